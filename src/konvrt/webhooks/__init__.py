"""Webhooks: signing (and `verify` for receivers), the address policy, and delivery.

Importing this package stays light (no database, no HTTP client), so a receiver can use
``from konvrt.webhooks import verify`` alone.
"""

from konvrt.webhooks.signing import WebhookSignatureError, generate_secret, sign, verify

__all__ = ["WebhookSignatureError", "generate_secret", "sign", "verify"]
