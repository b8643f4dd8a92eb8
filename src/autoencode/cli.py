"""The ``autoencode`` command line (DESIGN 2.2); also ``python -m autoencode``.

Commands: ``demo``, ``train``, ``evaluate``, ``plot``, ``datasets``. :func:`main` returns
the exit status: 0 success, 2 user error (one line on stderr starting with ``error:``, no
traceback), 3 training diverged (the run directory is written all the same), 130
interrupted.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
from pathlib import Path
from typing import Optional, Sequence

from .errors import AutoencodeError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 2, 3, 130

_EXIT_STATUS = """exit status:
  0    success
  2    user error (bad option, data or file): one line on stderr starting with 'error:'
  3    training diverged (non-finite objective): the run directory is still written, with
       the last good controls and status 'diverged' in metrics.json
  130  interrupted (Ctrl-C); no partial run directory is left behind"""

_EXIT_SHORT = """exit status:
  0    success
  2    user error (bad option, run directory, data or file): one line on stderr
       starting with 'error:'"""

_RUN_DIR = """run directory (--out): model.safetensors, model.json, config.json, metrics.json,
history.csv, figures/*.png, report.html. It is written to a hidden temporary
sibling and renamed into place when complete."""

# Options of later work packages: accepted so that scripts can be written against the final
# interface, refused with status 2 when given a non-default value. Remove an entry here when
# its feature is implemented (and wire the value through run.train).


class UsageError(Exception):
    """A command-line usage error (argparse's, turned into one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # noqa: D401 - argparse hook
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults, except the uninformative None/False ones; keep descriptions and
    epilogs as written (they are wrapped with :func:`_wrap`)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False \
                or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _wrap(text: str) -> str:
    return textwrap.fill(text, 88)


# --------------------------------------------------------------------------------------------
# Argument types (each failure becomes "error: argument --x: ...")
# --------------------------------------------------------------------------------------------

def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def _float(low: float, *, open_low: bool = False, high: Optional[float] = None,
           open_high: bool = False):
    bounds = f"{'>' if open_low else '>='} {low:g}" + (
        "" if high is None else f" and {'<' if open_high else '<='} {high:g}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {text!r}") from None
        ok = math.isfinite(value) and (value > low if open_low else value >= low)
        if high is not None:
            ok = ok and (value < high if open_high else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a finite number {bounds}, got {text}")
        return value
    parse.__name__ = f"number {bounds}"
    return parse


def _widths(text: str) -> tuple:
    try:
        widths = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 64,32,16,8,16,32,64, got {text!r}") from None
    return widths


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .fields import ACTIVATIONS
    from .methods import METHODS
    from .solvers import SOLVERS
    from .data import SCALINGS

    parser = _Parser(
        prog="autoencode", formatter_class=_Formatter,
        description=_wrap("AutoencODEs: width-varying neural ODE autoencoders trained as mean-field "
                    "optimal control problems (Pontryagin maximum principle)."),
        epilog="Start with 'autoencode demo', then open the report.html it prints.\n\n"
               + _EXIT_STATUS)
    parser.add_argument("--version", action="version", version=f"autoencode {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    # ---------------------------------------------------------------- demo
    demo = sub.add_parser(
        "demo", formatter_class=_Formatter, help="train on 8x8 digits, compare with Adam and PCA",
        description=_wrap("Train an AutoencODE on scikit-learn's 8x8 digits (80/20 split, widths "
                    "64,32,16,8,16,32,64, 4 steps per width, T=4, lam=1e-3, method emsa), "
                    "train the same model with adam for comparison and fit PCA with the same "
                    "latent dimension k=8 on the training split; write a run directory and "
                    "print a summary and the path of report.html."),
        epilog=_RUN_DIR + "\nAn --out that holds a previous demo run (such as the default "
                          "runs/demo)\nis replaced.\n\n" + _EXIT_STATUS)
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), metavar="DIR",
                      help="run directory to write (must be new or empty, or a previous demo run)")
    demo.add_argument("--iters", type=_int_at_least(0), default=150, metavar="N",
                      help="training iterations of each method")
    demo.add_argument("--quiet", action="store_true", help="no progress output")
    demo.set_defaults(func=_cmd_demo)

    # ---------------------------------------------------------------- train
    train = sub.add_parser(
        "train", formatter_class=_Formatter, help="train on a built-in data set or a file",
        description=_wrap("Train an AutoencODE on a built-in data set or a data file, compare with "
                    "another method and with PCA at the same latent dimension, and write a "
                    "run directory with the model, metrics, history, figures and report."),
        epilog=_wrap("data: a built-in name (see 'autoencode datasets') or a .npy, .npz, "
                     ".csv (numeric, optional header) or MNIST IDX file (.idx, -ubyte, "
                     "optionally .gz); rows are samples.") + "\n\n" + _RUN_DIR + "\n\n" + _EXIT_STATUS)
    g = train.add_argument_group("data")
    g.add_argument("--data", required=True, metavar="NAME|PATH",
                   help="built-in data set name or path to a data file")
    g.add_argument("--n", type=_int_at_least(1), default=None, metavar="N",
                   help="number of samples: generated data sets draw N points, fixed data "
                        "(digits, files) a random subset of N rows (default: all / the data "
                        "set's default size)")
    g.add_argument("--test-fraction", type=_float(0, high=1, open_high=True), default=0.2,
                   metavar="F", help="fraction of samples held out for testing (0: none)")
    g.add_argument("--scaling", choices=("auto",) + tuple(SCALINGS), default="auto",
                   help="feature scaling fitted on the training split; auto: none for "
                        "built-ins, divide (by the maximum) for IDX images, standard for "
                        "other files")
    g.add_argument("--seed", type=_int_at_least(0), default=0,
                   help="seed of the data generator, the split and the initial controls")
    g = train.add_argument_group("model")
    g.add_argument("--widths", type=_widths, default=None, metavar="W0,W1,...",
                   help="width profile from d down to the latent dimension k and back to d, "
                        "e.g. 64,32,16,8,16,32,64 (default: halving from d down to --latent)")
    g.add_argument("--latent", type=_int_at_least(1), default=None, metavar="K",
                   help="latent dimension k when --widths is not given (default: 8 if d >= 16, "
                        "else d - 1)")
    g.add_argument("--steps-per-width", type=_int_at_least(1), default=4, metavar="S",
                   help="time steps each width lasts")
    g.add_argument("--T", type=_float(0, open_low=True), default=4.0, metavar="T",
                   help="final time of the flow")
    g.add_argument("--activation", choices=tuple(ACTIVATIONS), default="tanh",
                   help="activation of the controlled field")
    g.add_argument("--field", choices=("layer", "two-layer"), default="layer",
                   help="controlled field: sigma(Wx+b) or A sigma(Wx+b)")
    g.add_argument("--solver", choices=tuple(SOLVERS), default="euler", help="time stepper")
    g = train.add_argument_group("training")
    g.add_argument("--method", choices=tuple(METHODS), default="emsa", help="training method")
    g.add_argument("--lam", type=_float(0), default=1e-3, metavar="LAMBDA",
                   help="Tikhonov weight lambda of the control penalty")
    g.add_argument("--iters", type=_int_at_least(0), default=300, metavar="N",
                   help="training iterations")
    g.add_argument("--lr", type=_float(0, open_low=True), default=None, metavar="LR",
                   help="learning rate of adam/sgd (default: the method's, 1e-2 for adam, "
                        "1e-1 for sgd); an error for other methods")
    g.add_argument("--batch-size", type=_int_at_least(1), default=None, metavar="B",
                   help="mini-batch size of adam/sgd (default: full batch)")
    g.add_argument("--compare", choices=tuple(METHODS) + ("none",), default="adam",
                   help="also train this method with the same settings for comparison "
                        "(skipped when equal to --method)")
    g.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point precision")
    g = train.add_argument_group("output")
    g.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="run directory to write, new or empty (default: "
                        "runs/<data>-<method>-<date>-<time>)")
    g.add_argument("--quiet", action="store_true", help="no progress output")
    g = train.add_argument_group("long runs and scale")
    g.add_argument("--checkpoint-every", type=_int_at_least(0), default=0, metavar="N",
                   help="write the full training state to DIR/checkpoint.safetensors every N "
                        "iterations and at the end (atomically; 0: never)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint up to --iters "
                        "iterations in total (same settings and data required)")
    g.add_argument("--workers", type=_int_at_least(1), default=1, metavar="N",
                   help="shard particles over N local processes with torch.distributed "
                        "(gloo on CPU, nccl on CUDA); torchrun --nproc-per-node N -m "
                        "autoencode train ... works too")
    train.set_defaults(func=_cmd_train)

    # ---------------------------------------------------------------- evaluate
    evaluate = sub.add_parser(
        "evaluate", formatter_class=_Formatter, help="reconstruction error of a trained run",
        description=_wrap("Print the reconstruction MSE of a run's model (and of PCA with the same "
                    "latent dimension, fitted on the run's training split) on the run's own "
                    "test split, recomputed from the recorded data source, seed and test "
                    "fraction, or on other data scaled with the run's scaler. Writes nothing."),
        epilog=_EXIT_SHORT)
    evaluate.add_argument("--run", type=Path, required=True, metavar="DIR",
                          help="run directory written by train or demo")
    evaluate.add_argument("--data", default=None, metavar="NAME|PATH",
                          help="evaluate on this data instead of the run's test split")
    evaluate.set_defaults(func=_cmd_evaluate)

    # ---------------------------------------------------------------- plot
    plot = sub.add_parser(
        "plot", formatter_class=_Formatter, help="redraw a run's figures and report",
        description=_wrap("(Re)draw figures/*.png and report.html of a run directory from its files "
                    "(model, config.json, metrics.json, history.csv); the data for the "
                    "trajectory, latent and reconstruction figures is reloaded from the "
                    "recorded source."), epilog=_EXIT_SHORT)
    plot.add_argument("--run", type=Path, required=True, metavar="DIR",
                      help="run directory written by train or demo")
    plot.set_defaults(func=_cmd_plot)

    # ---------------------------------------------------------------- datasets
    datasets = sub.add_parser(
        "datasets", formatter_class=_Formatter, help="list the built-in data sets",
        description="List the built-in data sets usable as 'train --data NAME'.",
        epilog=_wrap("Files are accepted too: .npy, .npz, .csv, MNIST IDX (.idx, -ubyte, "
                     "optionally .gz)."))
    datasets.set_defaults(func=_cmd_datasets)

    # ---------------------------------------------------------------- study
    from .studies import add_study_parser
    add_study_parser(sub)
    return parser


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _train_config(args) -> dict:
    if args.lr is not None and args.method not in ("adam", "sgd"):
        raise UsageError(f"--lr is for the gradient methods adam and sgd, not --method "
                         f"{args.method}; remove --lr or choose --method adam")
    if args.batch_size is not None and args.method not in ("adam", "sgd"):
        raise UsageError(f"--batch-size is for the gradient methods adam and sgd, not --method "
                         f"{args.method}; remove --batch-size or choose --method adam")
    if args.widths is not None:
        from .profile import WidthProfile
        profile = WidthProfile.build(args.widths, args.steps_per_width, args.T)
        if args.latent is not None and args.latent != profile.k:
            raise UsageError(f"--latent {args.latent} disagrees with --widths "
                             f"{','.join(map(str, args.widths))} (minimum {profile.k}); "
                             f"give only one of them")
    return {
        "command": "train", "data": args.data, "n": args.n, "seed": args.seed,
        "test_fraction": args.test_fraction, "scaling": args.scaling,
        "widths": None if args.widths is None else list(args.widths),
        "latent_dim": args.latent, "steps_per_width": args.steps_per_width, "T": args.T,
        "activation": args.activation, "field": args.field, "solver": args.solver,
        "method": args.method, "lam": args.lam, "iters": args.iters, "lr": args.lr,
        "batch_size": args.batch_size,
        "compare": None if args.compare == "none" else args.compare,
        "device": args.device, "dtype": args.dtype,
    }


def _default_out(config: dict) -> Path:
    name = Path(config["data"]).name
    for suffix in (".gz", ".npy", ".npz", ".csv", ".idx"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name or 'data'}-{config['method']}-{stamp}"


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _summary(result) -> str:
    m = result.metrics
    rows = [(f"{m['method']} (this run)", m)]
    if m.get("comparison"):
        rows.append((f"{m['comparison']['method']} (comparison)", m["comparison"]))
    table = [("", "train MSE", "test MSE", "ratio to PCA", "sweeps", "time (s)", "status")]
    for name, r in rows:
        table.append((name, _fmt(r.get("train_mse")), _fmt(r.get("test_mse")),
                      _ratio(r.get("ratio_to_pca")), _fmt(r.get("sweeps")),
                      _fmt(r.get("wall_time_s"), 3), r.get("status", "")))
    has_pca = m.get("pca_train_mse") is not None
    table.append((f"PCA (k = {m['latent_dim']})", _fmt(m.get("pca_train_mse")),
                  _fmt(m.get("pca_test_mse")), "1.000" if has_pca else "-", "-", "-", ""))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    head = (f"data {m.get('data_name')}: {m.get('n_train')} training / {m.get('n_test')} test "
            f"samples, d = {m.get('d')}, widths {','.join(map(str, m.get('widths', [])))}, "
            f"lam = {m.get('lam'):g}")
    return "\n".join([head, *lines, f"run directory: {result.out}",
                      f"report: {result.report}"])


def _log(args):
    return (lambda message: None) if getattr(args, "quiet", False) else _stderr


def _finish(result) -> int:
    print(_summary(result), flush=True)
    if result.diverged:
        m = result.metrics
        _stderr(f"error: {m['method']} diverged at iteration {m.get('diverged_at')} (the "
                f"objective became non-finite); {result.out} holds the last good controls; "
                f"try a larger --lam or --method emsa")
        return EXIT_DIVERGED
    return EXIT_OK


def _cmd_train(args) -> int:
    from . import distributed, run
    config = _train_config(args)
    if args.resume and args.out is None:
        raise UsageError("--resume needs the --out of the run to continue")
    distributed.init_from_env(args.device)  # a no-op unless started by torchrun
    if distributed.active() and args.workers > 1:
        raise UsageError("--workers spawns local processes; under torchrun use "
                         "--nproc-per-node instead")
    out = args.out if args.out is not None else _default_out(config)
    result = run.train(config, out, verbose=not args.quiet, log=_log(args), warn=_stderr,
                       workers=args.workers, checkpoint_every=args.checkpoint_every,
                       resume=args.resume)
    if not distributed.is_writer():
        return EXIT_OK
    return _finish(result)


DEMO_CONFIG = {
    "command": "demo", "data": "digits", "n": None, "seed": 0, "test_fraction": 0.2,
    "scaling": "auto", "widths": [64, 32, 16, 8, 16, 32, 64], "latent_dim": None,
    "steps_per_width": 4, "T": 4.0, "activation": "tanh", "field": "layer", "solver": "euler",
    "method": "emsa", "lam": 1e-3, "iters": 150, "lr": None, "batch_size": None,
    "compare": "adam", "device": "cpu", "dtype": "float32",
}


def _cmd_demo(args) -> int:
    from . import run
    config = dict(DEMO_CONFIG, iters=args.iters)
    result = run.train(config, args.out, verbose=not args.quiet, replace=True, log=_log(args),
                       warn=_stderr)
    return _finish(result)


def _cmd_evaluate(args) -> int:
    from . import run
    r = run.evaluate(args.run, args.data)
    print(f"run:        {r['run']} ({r['method']}, k = {r['latent_dim']})")
    print(f"data:       {r['data']} ({r['n']} samples, scaling {r['scaling']})")
    print(f"model MSE:  {_fmt(r['mse'], 6)}")
    if r["pca_mse"] is not None:
        print(f"PCA MSE:    {_fmt(r['pca_mse'], 6)} (k = {r['latent_dim']}, fitted on the "
              f"run's training split)")
        print(f"ratio:      {_ratio(r['ratio_to_pca'])} (model / PCA)")
    else:
        print(f"PCA MSE:    not computable ({r['pca_note']})")
    return EXIT_OK


def _cmd_plot(args) -> int:
    from . import run
    figures = run.redraw(args.run, warn=_stderr)
    for path in figures:
        print(path)
    print(Path(args.run) / "report.html")
    return EXIT_OK


def _cmd_datasets(args) -> int:
    from .data import list_datasets
    items = list_datasets()
    width = max(len(name) for name, _ in items)
    for name, description in items:
        print(f"{name.ljust(width)}  {description}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("a command is required: demo, train, evaluate, plot, datasets or study "
                             "(see 'autoencode --help')")
        return args.func(args)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    except (UsageError, AutoencodeError) as exc:
        _stderr(f"error: {_one_line(exc)}")
        return EXIT_USAGE
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _stderr(f"error: {where}{exc.strerror or _one_line(exc)}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _stderr("error: interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
