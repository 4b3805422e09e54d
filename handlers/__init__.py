"""Thin Bolt listeners, one module per capability; `render/` turns domain results into Block Kit.

`handlers/tables.py` lists every `/crisis` subcommand, queued interaction, module's listeners and job
kind in one place; a new capability is a new module plus its lines there. The composition root (bot/app.py,
bot/server.py) builds the app with `tables.register` and the worker with `tables.run_job` and
`tables.tell_job_failed`.
"""
