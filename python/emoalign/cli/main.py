"""The ``emoalign`` command line. Sub-commands are imported lazily so ``--help`` stays fast and a
statistics-only install never imports torch or MLX."""

from __future__ import annotations

import sys

import click

from emoalign import __version__
from emoalign.errors import UNWRITABLE_ERRNOS, EmoalignError
from emoalign.registry import Registry

#: the sub-commands, as lazy ``module:attribute`` entries with their one-line help (the only list of them)
COMMANDS: Registry = Registry("command")
for _name, _target, _help in (
    ("demo", "emoalign.cli.demo:demo", "Run the whole pipeline on the built-in simulated study and render the report."),
    ("simulate", "emoalign.cli.simulate:simulate", "Write a simulated study (stimuli, human and machine ratings) from a YAML profile."),
    ("stimuli", "emoalign.cli.stimuli:stimuli", "Build and check a stimulus table (images + design metadata)."),
    ("humans", "emoalign.cli.humans:humans", "Import and validate human ratings."),
    ("infer", "emoalign.cli.infer:infer", "Run a VLM or FER model over the stimuli into a resumable run folder."),
    ("spec", "emoalign.cli.spec:spec", "Check an analysis spec, or print its JSON Schema."),
    ("analyze", "emoalign.cli.analyze:analyze", "Run every analysis of a YAML spec; write tidy results + manifest."),
    ("report", "emoalign.cli.report:report", "Render the Quarto report (HTML, PDF) of a results folder."),
):
    COMMANDS.add_lazy(_name, _target, help=_help)


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return COMMANDS.names()

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        help_text = COMMANDS.meta(name)["help"]
        try:
            return COMMANDS.get(name)
        except EmoalignError as err:
            exc = err.__cause__
            if not isinstance(exc, ImportError):
                raise
            missing = getattr(exc, "name", None) or str(exc)

            @click.command(name=name, help=help_text, context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1)
            def unavailable(args):
                raise EmoalignError(
                    f"`emoalign {name}` is unavailable: it needs {missing!r}, which is not installed",
                    hint="install the matching extra, e.g. pip install 'emoalign[all]' (see README)",
                )

            return unavailable

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(n, COMMANDS.meta(n)["help"]) for n in COMMANDS.names()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="emoalign")
def cli():
    """emoalign: judge VLM and FER emotion raters against the human inter-rater ceiling.

    \b
    Typical flow:
      emoalign simulate --profile paper -o study/      # or: stimuli scan + humans import
      emoalign infer --rater fer:minixception --stimuli study/stimuli.parquet --out study/runs/
      emoalign analyze specs/paper.yaml --out results/
      emoalign report results/ -o report.html
    """


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="emoalign", standalone_mode=False)
    except EmoalignError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except OSError as exc:
        if exc.errno not in UNWRITABLE_ERRNOS:
            raise
        # the place cannot be written (permissions, read-only or full disk): a user error, not a crash
        where = f" {exc.filename}" if exc.filename else ""
        click.secho(f"error: cannot write{where}: {exc.strerror}\n  hint: choose a folder you can write to "
                    "(or free disk space) and run the command again; finished work is kept", fg="red", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
