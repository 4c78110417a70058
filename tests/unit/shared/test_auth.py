from shared.auth import KEY_PREFIX, generate_key, hash_key


def test_keys_are_random_and_only_their_hash_is_kept() -> None:
    first, second = generate_key(), generate_key()
    assert first.plaintext != second.plaintext
    assert first.plaintext.startswith(KEY_PREFIX) and len(first.plaintext) > 40
    assert first.key_hash == hash_key(first.plaintext) and first.plaintext not in first.key_hash
    assert first.display_prefix == first.plaintext[:12]
