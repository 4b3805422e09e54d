"""Flows: what happens after the ack, told top to bottom in the domain's words.

Each flow records its steps in SQL and asks a `SlackPort` (`bot.flows.port`) for the outside world,
so it reads without Bolt and runs in tests against a fake port. The one implementation that talks
to Slack is `handlers.slack_gateway.SlackGateway`.
"""
