"""The ``cim`` command: convert, import, tile, serve, demo.

User errors (:class:`cim.errors.CimError`) print one message and exit with the code from
:data:`EXIT_CODES`; no tracebacks unless ``--debug``.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

from cim import errors
from server import cli_export
from server.layout import DataDir

if TYPE_CHECKING:  # pyproj, numpy and shapely load on first use: `cim convert` starts its IFC child first
    from cim.crs import Frame

EXIT_CODES: list[tuple[type[errors.CimError], int]] = [  # first match wins
    (errors.CrsError, 4),
    (errors.PlacementError, 4),
    (errors.InputError, 3),
    (errors.NotFoundError, 5),
    (errors.ConflictError, 6),
    (errors.StoreError, 7),
    (errors.CimError, 1),
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_GENERATOR = REPO_ROOT / "fixtures" / "make_danang_district.py"
DEMO_DATASET = "danang-hitech-park"

log = logging.getLogger("cim")


def exit_code_for(exc: errors.CimError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


class _Context:
    def __init__(self, data: Path, debug: bool) -> None:
        self.data = data
        self.debug = debug


# no tqdm monitor thread: with no thread but the main one, worker pools fork from this process
# instead of starting a forkserver (converters.citygml.parallel.pool_context, decision 42)
tqdm.monitor_interval = 0


@contextmanager
def _bar(desc: str, unit: str = "B", scale: bool = True) -> Iterator[Callable[[int, int], None]]:
    bar = tqdm(desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if unit == "B" else 1000,
               file=sys.stderr, disable=None, leave=True, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh() if done >= total else bar.update(0)

    try:
        yield update
    finally:
        bar.close()


def _frame(crs: str | None, origin: str | None, rotation: float | None) -> Frame | None:
    if crs is None and origin is None and rotation is None:
        return None
    from cim.placement import user_frame

    return user_frame(crs=crs, origin=origin, rotation=rotation)


def _prestart_ifc(inputs: tuple[Path, ...], frame: Frame | None) -> None:
    """Start the IFC conversion children now, before this process imports the store and the
    tiler, so that both start-ups overlap; the reader adopts them (converters/ifc/spawn.py)."""
    import json

    from converters.ifc import spawn

    spec = json.dumps(frame.spec()) if frame is not None else ""
    for path in inputs:
        spawn.prestart(path, spec)


def _prestart_point_workers(inputs: tuple[Path, ...]) -> bool:
    """Start the point tiler's worker processes now when an input is a LAS/LAZ file (magic
    ``LASF``), so that their start-up overlaps this process's (tiling/pointcloud/pool.py)."""
    def is_las(path: Path) -> bool:
        try:
            with open(path, "rb") as fh:
                return fh.read(4) == b"LASF"
        except OSError:
            return False

    if not any(is_las(p) for p in inputs):
        return False
    from tiling.pointcloud import pool

    pool.prestart()
    return True


def _placement_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--rotation", type=float, default=None,
                      help="With --origin: compass bearing (degrees clockwise from north) of the local +Y axis.")(fn)
    fn = click.option("--origin", metavar="LON,LAT[,H]", default=None,
                      help="Place data in local metric coordinates with their origin at this WGS 84 point.")(fn)
    fn = click.option("--crs", metavar="EPSG:N", default=None,
                      help="The CRS the input coordinates are in (overrides the file's own).")(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), envvar="CIM_DATA",
              default=Path("city-data"), show_default=True, help="Data directory (store and published tiles); env CIM_DATA.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, data: Path, debug: bool) -> None:
    """City information model server: IFC, CityGML and LiDAR -> one city model -> 3D Tiles."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = _Context(data, debug)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output tileset folder.")
@_placement_options
@click.option("--format", "fmt", type=click.Choice(["1.1", "1.0"]), default="1.1", show_default=True,
              help="3D Tiles 1.1 (glb + metadata) or 1.0 (b3dm + batch table).")
def convert(inputs: tuple[Path, ...], out: Path, crs: str | None, origin: str | None, rotation: float | None,
            fmt: str) -> None:
    """Convert files straight to a tileset in OUT (no data directory involved)."""
    points = _prestart_point_workers(inputs)
    frame = _frame(crs, origin, rotation)
    _prestart_ifc(inputs, frame)
    from server import pipeline

    try:
        with _bar("import") as imp, _bar("tiles", unit="tile", scale=False) as til:
            info, summary = pipeline.convert(list(inputs), out, frame=frame, format=fmt,
                                             import_progress=imp, tile_progress=til)
    finally:
        if points:
            from tiling.pointcloud import pool

            pool.discard_prestarted()
    _print_report(info.report)
    click.echo(f"{_what(info)} -> {summary.tiles} tiles, "
               f"{summary.contents} contents, {summary.bytes / 1e6:.1f} MB in {out}/tileset.json")


@cli.command("import")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", default=None, help="Dataset name (default: derived from the first file name).")
@_placement_options
@click.option("--tile/--no-tile", default=False, show_default=True, help="Also build and publish its tiles.")
@click.pass_obj
def import_(obj: _Context, inputs: tuple[Path, ...], dataset: str | None, crs: str | None, origin: str | None,
            rotation: float | None, tile: bool) -> None:
    """Import files into one dataset of the city store (replacing a dataset of the same name)."""
    from server import pipeline

    data = DataDir(obj.data)
    name = pipeline.check_dataset_name(dataset or pipeline.dataset_name_for(list(inputs)))
    store = data.open_store()
    try:
        t0 = time.perf_counter()
        with _bar(f"import {name}") as bar:
            info = pipeline.import_files(store, name, list(inputs), frame=_frame(crs, origin, rotation), progress=bar)
        _print_report(info.report)
        click.echo(f"dataset '{name}': {_what(info)} "
                   f"in {time.perf_counter() - t0:.1f} s, frame {info.frame.get('text') or info.frame}")
        if tile:
            _tile(data, store, [name], "1.1")
        else:
            click.echo(f"next: cim --data {obj.data} tile {name}")
    finally:
        store.close()


@cli.command()
@click.argument("datasets", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["1.1", "1.0"]), default="1.1", show_default=True)
@click.pass_obj
def tile(obj: _Context, datasets: tuple[str, ...], fmt: str) -> None:
    """Build and publish the tilesets of DATASETS (default: every dataset)."""

    data = DataDir(obj.data)
    store = data.open_store()
    try:
        names = list(datasets) or [d.name for d in store.list_datasets()]
        if not names:
            raise errors.NotFoundError(f"the store {data.store_path} has no dataset; run 'cim import' first")
        _tile(data, store, names, fmt)
    finally:
        store.close()


def _tile(data: Any, store: Any, names: list[str], fmt: str) -> None:
    from server import pipeline

    for name in names:
        with _bar(f"tiles {name}", unit="tile", scale=False) as bar:
            folder = pipeline.publish(data, store, name, format=fmt, progress=bar)
        click.echo(f"published '{name}' -> {folder}")


@cli.command("datasets")
@click.pass_obj
def datasets_(obj: _Context) -> None:
    """List the datasets in the store."""

    store = DataDir(obj.data).open_store()
    try:
        for d in store.list_datasets():
            click.echo(f"{d.name}\t{d.feature_count} features\t{_counts(d.class_counts)}\tv{d.version}\t{d.updated}")
    finally:
        store.close()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_obj
def serve(obj: _Context, host: str, port: int) -> None:
    """Serve tiles, the API and the viewer with uvicorn."""
    import uvicorn

    from server.app import create_app
    from server.settings import settings_from_env

    env = dict(os.environ)
    env["CIM_DATA"] = str(obj.data)
    app = create_app(settings_from_env(env))
    click.echo(f"serving {obj.data} on http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)  # the app logs requests itself


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--serve/--no-serve", "do_serve", default=True, show_default=True)
@click.pass_context
def demo(ctx: click.Context, host: str, port: int, do_serve: bool) -> None:
    """Generate the synthetic Da Nang High-Tech Park district, import it, tile it and serve it."""
    from server import pipeline

    obj: _Context = ctx.obj
    data = DataDir(obj.data)
    source = obj.data / "demo-input" / "danang_hitech_park_citygml2.gml"
    source.parent.mkdir(parents=True, exist_ok=True)
    if not DEMO_GENERATOR.is_file():
        raise errors.InputError(f"the demo generator {DEMO_GENERATOR} is missing (run from a source checkout)")
    click.echo(f"generating the demo district -> {source}", err=True)
    subprocess.run([sys.executable, str(DEMO_GENERATOR), "--version", "2", "--out", str(source)], check=True)
    store = data.open_store()
    try:
        with _bar(f"import {DEMO_DATASET}") as bar:
            info = pipeline.import_files(store, DEMO_DATASET, [source], progress=bar)
        click.echo(f"imported {info.feature_count} features ({_counts(info.class_counts)})")
        _tile(data, store, [DEMO_DATASET], "1.1")
    finally:
        store.close()
    if do_serve:
        ctx.invoke(serve, host=host, port=port)


def _what(info: Any) -> str:
    """What a dataset holds, for one line of output: its features, or its points."""
    if "points" in info.report:
        classes = ", ".join(f"{n} {c}" for c, n in sorted(info.report.get("points_by_class", {}).items(), key=lambda kv: -kv[1]))
        return f"{info.report['points']:,} points ({classes})"
    return f"{info.feature_count} features ({_counts(info.class_counts)})"


cli.add_command(cli_export.export)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _print_report(report: dict[str, Any]) -> None:
    for f in report.get("files", []):
        if f.get("georeferencing"):
            click.echo(f"{f.get('source') or 'input'}: {f['georeferencing']}", err=True)
    for w in report.get("warnings", []):
        click.echo(f"warning: {w}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cim`` command."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="cim", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except errors.CimError as exc:
        if debug:
            raise
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
