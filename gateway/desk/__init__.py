"""The desk a support team runs on: rep admin, API tokens and reports from the store."""
