"""The typer CLI (`forgetflow`)."""
