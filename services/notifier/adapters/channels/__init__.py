"""Delivery channels (adapters), one module each; every one raises RetryableDelivery or PermanentDelivery (base.py)."""
