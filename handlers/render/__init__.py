"""The one place that turns domain results into Block Kit (slack_sdk.models.blocks), per capability."""
