"""What the user asked for and could not have: the errors every front end reports as one
line, and the exit statuses they give. Light on purpose: the runtime's quick commands and
`edgevisor do` import it before anything else."""

EXIT_SETUP_FAILED = 125  # like docker run and runsc
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127


class ConfigError(Exception):
    """A problem with what the user asked for: reported as one line, never a traceback."""


class SetupError(ConfigError):
    """What was asked for is well formed, but the sandbox cannot be set up that way (a port
    in use, a working directory the guest cannot see): one line, and exit status 125, as
    docker run gives."""
