"""The controller's HTTP edge: one aiohttp server for the AWS Batch wire API and the dashboard."""
