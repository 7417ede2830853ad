"""Click commands, one module per area. Each module exports `COMMANDS`, a list of click commands/groups that
`zoo/cli.py` registers on the `zoo` group. Modules here import only click and light modules at the top; TensorFlow
is imported inside the command functions, so `zoo list` stays fast."""
