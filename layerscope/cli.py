"""Command line: parses arguments, runs the library, prints data on stdout and diagnostics on stderr."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import gc
import os
import stat
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from layerscope import __version__
from layerscope.errors import LayerscopeError, UsageError
from layerscope.outfile import check_target, silence_stdout, write_text
from layerscope.render.terminal import escape

if TYPE_CHECKING:
    from layerscope.analysis.inspection import Inspection
    from layerscope.cache import LayerCache
    from layerscope.gate.config import GateConfig
    from layerscope.gate.dive_ci import DiveCiRules
    from layerscope.model import CheckReport, ImageReport
    from layerscope.render.options import RenderOptions
    from layerscope.sources import SourceOptions


class Exit(IntEnum):
    OK = 0
    GATE_FAILED = 1
    ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    from layerscope.formats import DIFF_FORMATS, FORMATS

    parser = _Parser(prog="layerscope", description="What is inside a container image, and why it is big.")
    parser.add_argument("--version", action="version", version=f"layerscope {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    inspect = commands.add_parser("inspect", help="report the layers, sizes, packages and waste of one image")
    inspect.add_argument("reference", help=_REFERENCE_HELP)
    inspect.add_argument("--format", default="table", help=f"output format: {', '.join(FORMATS)}")
    inspect.add_argument("--image", help="repo:tag to pick in a multi-image docker archive")
    inspect.add_argument("--top", type=int, default=20, help="how many of the largest files to list (0: none)")
    diff = commands.add_parser("diff", help="compare two images: how much smaller, where the bytes went")
    diff.add_argument("old", help="the image before: " + _REFERENCE_HELP)
    diff.add_argument("new", help="the image after, in any form OLD accepts")
    diff.add_argument("--format", default="table", help=f"output format: {', '.join(DIFF_FORMATS)}")
    diff.add_argument(
        "--expect-reduction",
        metavar="AMOUNT",
        help="exit 1 unless total size shrinks by at least AMOUNT (30%%, 200MB, 150MiB)",
    )
    diff.add_argument("--old-image", help="repo:tag to pick in a multi-image archive given as OLD")
    diff.add_argument("--new-image", help="repo:tag to pick in a multi-image archive given as NEW")
    check = commands.add_parser("check", help="fail a CI build that breaks its size budget")
    check.add_argument("reference", help="the image to check: " + _REFERENCE_HELP)
    check.add_argument("--baseline", help="the previous release, for the baseline.* rules")
    check.add_argument(
        "--config",
        type=Path,
        help="layerscope.toml or pyproject.toml (default: found from the working directory upwards; "
        "without one, the default rules)",
    )
    check.add_argument(
        "--dive-ci", type=Path, help="read dive's three rules from a .dive-ci file (default: ./.dive-ci if present)"
    )
    check.add_argument("--format", default="table", help="summary format: table, json")
    check.add_argument("--junit", help="also write JUnit XML to FILE (one testcase per rule)")
    check.add_argument(
        "--github",
        action="store_true",
        default=os.environ.get("GITHUB_ACTIONS") == "true",
        help="GitHub annotations and a step summary (automatic when GITHUB_ACTIONS=true)",
    )
    check.add_argument("--image", help="repo:tag to pick in a multi-image docker archive")
    tui = commands.add_parser("tui", help="explore an image interactively, or two (OLD NEW) in diff mode")
    tui.add_argument("reference", help=_REFERENCE_HELP)
    tui.add_argument("new", nargs="?", help="a second image: open in diff mode (REFERENCE is then the old one)")
    tui.add_argument("--image", help="repo:tag to pick in a multi-image docker archive")
    tui.add_argument("--platform", help="os/arch[/variant] to pick in an OCI index (default: the host's)")
    tui.add_argument("--debug", action="store_true", help="show a traceback on errors")
    # registry credentials come from ~/.docker/config.json here: stdin belongs to the terminal UI
    tui.add_argument("--pull", action="store_true", help="have the Docker engine pull NAME[:TAG], then read it")
    tui.add_argument("--insecure", action="store_true", help="registries: skip TLS verification, allow plain http")
    inspect.add_argument("--packages", default="10", help="how many packages the table lists, or 'all'")
    diff.add_argument("--packages", default="15", help="how many changed packages each group lists, or 'all'")
    for sub in (inspect, diff, check, tui):
        _add_cache_options(sub)
    _add_cache_command(commands)
    for sub in (inspect, diff, check):
        sub.add_argument("-o", "--output", default="-", help="write the report to FILE instead of stdout ('-')")
        sub.add_argument(
            "--platform", help="os/arch[/variant] to pick in an OCI index or manifest list (default: the host's)"
        )
        sub.add_argument("--pull", action="store_true", help="have the Docker engine pull NAME[:TAG], then read it")
        sub.add_argument("--insecure", action="store_true", help="registries: skip TLS verification, allow plain http")
        sub.add_argument("--username", help="registries: log in as USER (the password is read with --password-stdin)")
        sub.add_argument("--password-stdin", action="store_true", help="registries: read the password from stdin")
        sub.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
        sub.add_argument("--debug", action="store_true", help="show a traceback on errors")
        sub.add_argument(
            "--no-runtime-check",
            action="store_true",
            help="skip reading ELF headers: no missing-library, Python ABI or wheel platform check",
        )
    return parser


COMMANDS = ("inspect", "diff", "check", "tui", "cache")


def _add_cache_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    _add_cache_location(sub)


def _add_cache_location(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--cache-dir",
        type=Path,
        help="where layer results and reports are kept (default: $XDG_CACHE_HOME/layerscope, else ~/.cache/layerscope)",
    )
    sub.add_argument(
        "--cache-size",
        metavar="SIZE",
        default=os.environ.get("LAYERSCOPE_CACHE_SIZE"),
        help="cap on the cache: least recently used entries go beyond it (default 2GB, or $LAYERSCOPE_CACHE_SIZE)",
    )


def _add_cache_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    cache = commands.add_parser("cache", help="what the cache holds (info), or empty it (clear)")
    cache.add_argument("action", choices=("info", "clear"))
    cache.add_argument("--format", default="table", choices=("table", "json"), help="output format of info")
    cache.add_argument("--debug", action="store_true", help="show a traceback on errors")
    _add_cache_location(cache)


_REFERENCE_HELP = (
    "docker-archive:PATH, oci:DIR[:TAG], oci-archive:PATH[:TAG], docker://NAME[:TAG], "
    "registry://HOST[:PORT]/REPO[:TAG|@DIGEST], a path, or NAME[:TAG] (the local engine's copy when it "
    "has one, else the registry's)"
)
_MAX_PASSWORD = 4096


def _progress(enabled: bool, label: str = "reading layers"):  # type: ignore[no-untyped-def]
    if not enabled:
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total} layers\x1b[K", end=end, file=sys.stderr, flush=True)

    return show


def _report(args: argparse.Namespace, reference: str, image: str | None, label: str) -> ImageReport:
    return _inspection(args, reference, image, label).report


def _both_reports(args: argparse.Namespace) -> tuple[ImageReport, ImageReport]:
    """Both sides of a diff. An engine export is limited by the engine, not by this machine's cores,
    so when either side comes from the engine the old one is read in a worker at the same time."""
    from layerscope.parallel import Forked
    from layerscope.sources import split_reference

    engine = any(split_reference(ref)[0] in ("docker", "name") for ref in (args.old, args.new))
    if not engine:
        return (
            _report(args, args.old, args.old_image, "reading old image"),
            _report(args, args.new, args.new_image, "reading new image"),
        )
    old_job = Forked(_report, args, args.old, args.old_image, "reading old image")
    try:
        new = _report(args, args.new, args.new_image, "reading new image")
    except BaseException:
        old_job.cancel()
        raise
    return old_job.result(), new


def _inspection(args: argparse.Namespace, reference: str, image: str | None, label: str) -> Inspection:
    from layerscope.analysis.captures import layer_capture
    from layerscope.archive.headstart import guessing

    runtime = not args.no_runtime_check
    # the biggest layer of an archive file starts now, while the archive is opened and validated
    with guessing(_archive_file(reference), layer_capture(runtime)) as head_start:
        from layerscope.sources import open_image

        progress = _progress(not args.quiet and sys.stderr.isatty(), label)
        with open_image(reference, _source_options(args, image)) as opened:
            if not args.quiet and opened.origin:
                print(f"layerscope: {_printable(reference)}: reading from {opened.origin}", file=sys.stderr)
            if progress:
                opened.on_bytes = _stream_progress(label)
            opened.head_start = head_start
            if getattr(args, "cache", None) is None:
                from layerscope.analysis.inspect import inspect_image

                return inspect_image(opened, progress=progress, top=getattr(args, "top", 20), runtime=runtime)
            from layerscope.analysis.cached import inspect_cached

            return inspect_cached(opened, args.cache, progress=progress, top=getattr(args, "top", 20), runtime=runtime)


def _archive_file(reference: str) -> str | None:
    """The file a reference names when it may be an image archive (a guess: the source decides)."""
    candidates = [reference]
    if reference.startswith("docker-archive:"):
        candidates = [reference.removeprefix("docker-archive:")]
    elif reference.startswith("oci-archive:"):
        location = reference.removeprefix("oci-archive:")
        candidates = [location, location.rpartition(":")[0]]  # oci-archive:PATH:TAG
    return next((path for path in candidates if path and path != "-" and _is_regular(path)), None)


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _source_options(args: argparse.Namespace, image: str | None) -> SourceOptions:
    from layerscope.sources import SourceOptions

    return SourceOptions(
        image=image,
        platform=args.platform,
        pull=args.pull,
        insecure=args.insecure,
        username=getattr(args, "username", None),
        password=getattr(args, "password", None),
    )


def _read_password(args: argparse.Namespace) -> None:
    """--password-stdin, read once (a diff's two sides share it), kept as a Secret from the start."""
    from layerscope.registry.secret import Secret

    password_stdin, username = getattr(args, "password_stdin", False), getattr(args, "username", None)
    if password_stdin and username is None:
        raise UsageError("--password-stdin needs --username")
    if username is not None and not password_stdin:
        raise UsageError("--username needs --password-stdin (the password is never taken on the command line)")
    if not password_stdin:
        return
    text = sys.stdin.read(_MAX_PASSWORD + 1)
    if len(text) > _MAX_PASSWORD:
        raise UsageError("--password-stdin: the password is too long")
    password = text.rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin: stdin was empty")
    args.password = Secret(password)


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _stream_progress(label: str):  # type: ignore[no-untyped-def]
    from layerscope.units import size

    shown = [0]

    def show(received: int) -> None:
        if received - shown[0] >= _STREAM_STEP:  # the SDK hands out 32 kB chunks: print every 10 MB
            shown[0] = received
            print(f"\r{label}: {size(received)} exported by the engine\x1b[K", end="", file=sys.stderr, flush=True)

    return show


_STREAM_STEP = 10_000_000


def _package_limit(text: str) -> int | None:
    if text == "all":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise UsageError(f"--packages takes a number or 'all', not {text[:20]!r}")
    return int(text)


def _render_options(args: argparse.Namespace) -> RenderOptions:
    from layerscope.render.options import RenderOptions
    from layerscope.render.terminal import terminal_width

    return RenderOptions(packages=_package_limit(args.packages), width=terminal_width())


def _check_format(name: str, choices: tuple[str, ...]) -> None:
    if name not in choices:
        raise UsageError(f"unknown format {name!r}; choose one of: {', '.join(choices)}")


def _inspect(args: argparse.Namespace) -> Exit:
    from layerscope.formats import FORMATS

    # Every option is checked before any heavy work: a typo must not cost a 2 GB read.
    _check_format(args.format, FORMATS)
    if args.top < 0:
        raise UsageError("--top must be zero or more")
    options = _render_options(args)
    output = check_target(args.output)
    report = _report(args, args.reference, args.image, "reading layers")
    from layerscope.render import renderer

    write_text(renderer(args.format)(report, options), output)
    return Exit.OK


def _diff(args: argparse.Namespace) -> Exit:
    from layerscope.formats import DIFF_FORMATS
    from layerscope.units import Threshold

    _check_format(args.format, DIFF_FORMATS)
    options = _render_options(args)
    expect = None
    if args.expect_reduction is not None:
        try:
            expect = Threshold.parse(args.expect_reduction)
        except ValueError as exc:
            raise UsageError(f"--expect-reduction: {exc}") from exc
    output = check_target(args.output)
    old, new = _both_reports(args)
    from layerscope.analysis.diff import build_diff
    from layerscope.render import diff_renderer

    report = build_diff(old, new, expect)
    write_text(diff_renderer(args.format)(report, options), output)
    if report.expectation is not None and not report.expectation.met:
        _note(
            f"layerscope: the reduction in total size is {report.reduction.fraction:.1%} "
            f"({report.reduction.bytes:,} bytes), less than the expected {report.expectation.expected}"
        )
        return Exit.GATE_FAILED
    return Exit.OK


@dataclass(frozen=True)
class _Rules:
    config: GateConfig
    dive_ci: DiveCiRules | None
    source: str
    found: bool = True  # False: no configuration anywhere, the default rules


_NO_CONFIG = "layerscope: no layerscope.toml, [tool.layerscope] or .dive-ci found: checking the default rules"


def _rules(args: argparse.Namespace) -> _Rules:
    """The configuration given, else one found (layerscope.toml or [tool.layerscope] upwards, a
    .dive-ci in the working directory, as dive finds its own), else the default rules."""
    from layerscope.gate.config import DEFAULT_SOURCE, GateConfig, default_config, find_config, load_config
    from layerscope.gate.dive_ci import load_dive_ci

    if args.config is not None and not args.config.is_file():
        raise UsageError(f"{args.config}: no such configuration file")
    if args.dive_ci is not None and not args.dive_ci.is_file():
        raise UsageError(f"{args.dive_ci}: no such .dive-ci file")
    search = args.config is None and args.dive_ci is None
    config_path = args.config or (find_config(Path.cwd()) if search else None)
    dive_ci_path = args.dive_ci
    if search and Path(".dive-ci").is_file():
        dive_ci_path = Path(".dive-ci")
    if config_path is None and dive_ci_path is None:
        return _Rules(default_config(), None, DEFAULT_SOURCE, found=False)
    config = load_config(config_path) if config_path else None
    dive_ci = load_dive_ci(dive_ci_path) if dive_ci_path else None
    source = " + ".join(str(p) for p in (config_path, dive_ci_path) if p)
    return _Rules(config or GateConfig.model_validate({}), dive_ci, source)


def _check(args: argparse.Namespace) -> Exit:
    from layerscope.analysis.diff import build_diff
    from layerscope.gate.evaluate import build_rules, evaluate
    from layerscope.gate.rules import Subject

    _check_format(args.format, ("table", "json"))
    chosen = _rules(args)
    outputs = _check_outputs(args)
    rules = build_rules(chosen.config, chosen.dive_ci)
    current = _inspection(args, args.reference, args.image, "reading image")
    diff = None
    if args.baseline:
        diff = build_diff(_report(args, args.baseline, None, "reading baseline"), current.report)
    # Said once both images were read: an image that cannot be read ends in its one error line alone.
    if not args.quiet:
        _note(f"layerscope: rules from {chosen.source}" if chosen.found else _NO_CONFIG)
    report = evaluate(rules, Subject(current.report, current.paths, diff), chosen.config.warn, chosen.source)
    _emit_check(report, args, outputs)
    return Exit.OK if report.passed else Exit.GATE_FAILED


@dataclass(frozen=True)
class _CheckOutputs:
    report: Path | None  # None: stdout
    junit: Path | None
    step_summary: Path | None


def _check_outputs(args: argparse.Namespace) -> _CheckOutputs:
    junit = check_target(args.junit, "--junit") if args.junit else None
    summary = os.environ.get("GITHUB_STEP_SUMMARY") if args.github else None
    return _CheckOutputs(
        report=check_target(args.output),
        junit=junit,
        step_summary=check_target(summary, "$GITHUB_STEP_SUMMARY") if summary else None,
    )


def _emit_check(report: CheckReport, args: argparse.Namespace, outputs: _CheckOutputs) -> None:
    from layerscope.gate import output
    from layerscope.render.terminal import terminal_width

    if args.format == "json":
        text = report.model_dump_json(indent=2) + "\n"
    else:
        text = output.summary(report, terminal_width())
    if outputs.junit:
        write_text(output.junit(report), outputs.junit)
    if args.github:
        if outputs.step_summary:
            write_text(output.github_summary(report), outputs.step_summary, append=True)
        # GitHub reads workflow commands from the step's output, never from a file. With the report
        # in a file, or not JSON, they go to stdout; beside JSON on stdout they go to stderr.
        annotations = output.github_annotations(report)
        if outputs.report is None and args.format == "json":
            sys.stderr.write(annotations)
        elif outputs.report is None:
            text = annotations + text
        else:
            write_text(annotations, None)
    write_text(text, outputs.report)


def _note(message: str) -> None:
    print(escape(message), file=sys.stderr)


def _tui(args: argparse.Namespace) -> Exit:
    """Open the images here, so that a reference that cannot be opened fails as `inspect` does (one
    line, exit 2) before the screen is taken over; the app reads them in a worker and closes them."""
    from contextlib import ExitStack

    from layerscope.sources import open_image

    references = [args.reference] if args.new is None else [args.reference, args.new]
    with ExitStack() as stack:
        images = [stack.enter_context(open_image(ref, _source_options(args, args.image))) for ref in references]
        if args.cache is not None:  # layers seen before are not read again (the TUI needs every layer's walk)
            from layerscope.analysis.cached import CachedLayers

            # the TUI inspects with the runtime check on (inspect_image's default): the key says so
            images = [CachedLayers(image, args.cache, {"runtime": True}) for image in images]
        from layerscope.tui import create_app

        gc.enable()  # an interactive session runs for minutes: let the collector work
        create_app(images).run()
    return Exit.OK


def _open_cache(args: argparse.Namespace) -> LayerCache | None:
    """The cache this run reads and writes, or None (--no-cache, or a command that has none)."""
    if getattr(args, "no_cache", True) and args.command != "cache":
        return None
    from layerscope.cache import DEFAULT_MAX_BYTES, LayerCache, default_directory

    max_bytes = DEFAULT_MAX_BYTES
    if args.cache_size is not None:
        from layerscope.units import parse_size  # humanize and decimal: not before the first walk forks

        try:
            max_bytes = parse_size(args.cache_size)
        except ValueError as exc:
            raise UsageError(f"--cache-size: {exc}") from None
    return LayerCache(args.cache_dir or default_directory(), max_bytes)


def _cache_command(args: argparse.Namespace) -> Exit:
    import json

    from layerscope.units import size

    cache = args.cache
    if args.action == "clear":
        removed = cache.clear()
        print(f"removed {removed} entries from {cache.directory}")
        return Exit.OK
    info = cache.info()
    last = (
        None
        if info.last_hits is None
        else {"hits": info.last_hits, "misses": info.last_misses, "hit_rate": info.last_hit_rate}
    )
    if args.format == "json":
        document = {
            "directory": info.directory,
            "entries": info.entries,
            "bytes": info.bytes,
            "max_bytes": info.max_bytes,
            "last_run": last,
        }
        print(json.dumps(document, indent=2))
        return Exit.OK
    rate = "no run yet" if last is None else f"{info.last_hits} hits, {info.last_misses} misses"
    if info.last_hit_rate is not None:
        rate += f" ({info.last_hit_rate:.1%} hit rate)"
    print(f"directory   {_printable(info.directory)}")
    print(f"entries     {info.entries}")
    print(f"size        {size(info.bytes)} of at most {size(info.max_bytes)}")
    print(f"last run    {rate}")
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    # A short-lived run that allocates hundreds of thousands of small objects and frees them all at
    # exit: the cyclic collector would rescan them again and again for nothing (about 20% of the time).
    gc.disable()
    from layerscope.parallel import terminate_on_sigterm

    restore = terminate_on_sigterm()  # SIGTERM (CI runners, `timeout`) unwinds like Ctrl-C
    try:
        return _main(argv)
    finally:
        restore()
        gc.enable()


def run() -> NoReturn:
    """The command's entry point: main(), then an exit without the interpreter's teardown, which
    frees the run's hundreds of thousands of objects one by one (0.09-0.14 s after an inspection of
    lambda-geo before, against 0.02-0.04 s without it). Nothing is left to do by then but what
    teardown would have done that matters: flush the output and stop any worker still alive. A
    session of the TUI exits the usual way (Textual restores the terminal in its own exit handlers)."""
    try:
        code = main()
    except SystemExit as exc:  # argparse's --help and --version
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    if "textual" in sys.modules:
        raise SystemExit(code)
    from layerscope.parallel import stop_all

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # the reader went away, or the stream is closed
            stream.flush()
    stop_all()
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    from layerscope.parallel import Terminated

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = _parser()
    if not _known_command(parser, argv):
        return int(Exit.ERROR)
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(argv)
        _read_password(args)
        args.cache = _open_cache(args)
        commands = {"inspect": _inspect, "diff": _diff, "check": _check, "tui": _tui, "cache": _cache_command}
        code = int(commands[args.command](args))
        if args.cache is not None and args.command != "cache":
            args.cache.save_stats()  # for `layerscope cache info`
        return code
    except LayerscopeError as exc:
        if debug:
            traceback.print_exc()
        _note(f"layerscope: error: {exc}")
        return int(Exit.ERROR)
    except KeyboardInterrupt:
        _note("layerscope: interrupted")
        return 130
    except Terminated:
        print("layerscope: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        silence_stdout()  # the reader went away (`| head`): nothing more to say, and nowhere to say it
        return int(Exit.OK)
    except MemoryError:
        _note(f"layerscope: error: {_inputs(args)}: out of memory")
        return int(Exit.ERROR)
    except Exception as exc:  # the last resort: a bug, never exit 1 (which means "gate failed")
        if debug:
            traceback.print_exc()
        _note(f"layerscope: error: {_inputs(args)}: internal error ({type(exc).__name__}), rerun with --debug")
        return int(Exit.ERROR)


def _inputs(args: argparse.Namespace | None) -> str:
    """The references a run was reading, to name them in a last-resort message."""
    if args is None:
        return "layerscope"
    names = [getattr(args, key, None) for key in ("reference", "old", "new", "baseline")]
    return ", ".join(str(n) for n in names if n) or "layerscope"


def _known_command(parser: argparse.ArgumentParser, argv: list[str]) -> bool:
    """No arguments prints the usage; an unknown command the usage and the closest command."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if argv and (first is None or first in COMMANDS):
        return True  # an option such as --version or --help, or a command argparse will parse
    sys.stderr.write(parser.format_usage())
    if first is None:
        _note(f"layerscope: error: no command given; choose one of: {', '.join(COMMANDS)}")
        return False
    close = difflib.get_close_matches(first, COMMANDS, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of: {', '.join(COMMANDS)}"
    _note(f"layerscope: error: unknown command {first[:40]!r}{hint}")
    return False
