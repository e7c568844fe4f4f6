"""`sanigrid` commands for the project itself: init, layers (import and validate live here too)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sanigrid.layers._errors import SettingsError
from sanigrid.scripts._app import DEFAULT_PROJECT, ProjectOpt, app, console, load


@app.command()
def init(
    project: ProjectOpt = DEFAULT_PROJECT,
    name: Annotated[str, typer.Option(help="县城名称, 如 贵溪市 / county town name")] = "示例县城",
    county_code: Annotated[str, typer.Option(help="6-digit county code")] = "000000",
    crs: Annotated[str | None, typer.Option(help="projected CRS, e.g. EPSG:4548; default: from the data")] = None,
    overwrite: Annotated[bool, typer.Option(help="start again if a project is already there")] = False,
) -> None:
    """Create a project: an empty GeoPackage store and a settings file with the defaults."""
    from pydantic import ValidationError

    from sanigrid.layers.crs import metric_crs
    from sanigrid.layers.project import init_project
    from sanigrid.layers.settings import Settings

    if crs:  # a CRS in feet or degrees, or an unknown code, is refused before anything is written
        crs = metric_crs(crs, what="--crs").to_string()
    try:
        settings = Settings()
        settings.project.name = name
        settings.project.county_code = county_code
        settings.project.crs = crs or ""
    except ValidationError as e:
        raise SettingsError("; ".join(f"--{str(err['loc'][-1]).replace('_', '-')}: {err['msg']}"
                                      for err in e.errors())) from None
    p = init_project(project, settings=settings, overwrite=overwrite)
    console.print(f"已创建项目 created project in [bold]{p.root}[/]: {p.settings_path.name} + sanigrid.gpkg")


@app.command("layers")
def layers_cmd(project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """List the layers in the store: feature count, CRS, extent and when each last changed."""
    from sanigrid.layers.gpkginfo import gpkg_layer_info, peek_project

    quick = peek_project(project)  # a GeoPackage project: sqlite3 alone (no pydantic, pyproj or numpy)
    if quick is not None:
        name, gpkg = quick
        rows = gpkg_layer_info(gpkg)
    else:
        p = load(project)
        name, rows = p.settings.project.name, p.store.info()
    table = Table(title=f"{name} · {Path(project).resolve().name}")
    for col in ("图层 layer", "要素 features", "CRS", "范围 extent (m)", "更新 updated", "备注"):
        table.add_column(col)
    for li in rows:
        ext = "" if li.bounds is None else "{:.0f},{:.0f} – {:.0f},{:.0f}".format(*li.bounds)
        table.add_row(f"{li.kind} {li.title}", str(li.count), li.crs or "", ext, li.updated_at or "",
                      "合成数据 synthetic" if li.synthetic else "")
    console.print(table)


# ---------------------------------------------------------------- import and validate

KindArg = Annotated[str, typer.Argument(
    help="layer kind: boundary, grids, streets, alleys, markets, toilets, transfer_stations, collection_points, "
         "residents, problems, sample_points")]
FileArg = Annotated[Path, typer.Argument(
    help="GeoJSON, Shapefile, GeoPackage, CSV/XLSX with 经度/纬度, or OSM .osm/.pbf", exists=True, dir_okay=False)]
CoordsOpt = Annotated[str, typer.Option(
    "--coords", help="degree coordinates in wgs84 | cgcs2000 | gcj02 (高德/腾讯/微信) | bd09 (百度), "
                     "or a CRS such as EPSG:4548 for files without one")]
MapOpt = Annotated[str | None, typer.Option(
    "--map", help="file column → field, e.g. 厕所名称=name,等级=toilet_class,X坐标=经度; an empty field leaves "
                  "a column out: Source= (adds to imports.columns.KIND in sanigrid.toml)")]
ValuesOpt = Annotated[list[str] | None, typer.Option(
    "--values", help="FIELD:FROM=TO,… maps file values to allowed ones, e.g. "
                     "'source:Constituent Call=群众举报,Phone=12345' (repeat, or separate fields with ;)")]
AddCategoriesOpt = Annotated[bool, typer.Option(
    "--add-categories", help="add every problem category of the file that sanigrid.toml lacks, with the "
                             "default deadline, and list them")]
LayerOpt = Annotated[str | None, typer.Option("--layer", help="GeoPackage layer or XLSX sheet to read")]
FixOpt = Annotated[bool, typer.Option(
    "--fix", help="repair what can be repaired: swap lat/lon back, make_valid, multis/areas to points")]

_SHOW_ISSUES = 15


def _print_path(label: str, path: Path | None) -> None:
    """A file path printed whole (never cut or wrapped by the terminal width), to copy into Excel or a shell."""
    if path is not None:
        console.print(f"{label}: {escape(str(Path(path).resolve()))}", highlight=False, soft_wrap=True)


def _print_validation(report, *, title: str) -> None:
    """Summary table, notes and the first messages of a validation report."""
    from sanigrid.layers.validation import ValidationReport

    assert isinstance(report, ValidationReport)
    table = Table(title=title)
    for col in ("检查 check", "级别 severity", "行数 rows"):
        table.add_column(col)
    for rec in report.counts().to_dict("records"):
        table.add_row(rec["name"], "[red]错误 error[/]" if rec["severity"] == "error" else "[yellow]警告 warning[/]",
                      str(rec["count"]))
    if report.issues:
        console.print(table)
    for note in report.notes:
        console.print(f"[dim]· {escape(note)}[/]", highlight=False)
    for issue in (report.errors + report.warnings)[:_SHOW_ISSUES]:  # errors first, then warnings
        colour = "red" if issue.severity == "error" else "yellow"
        console.print(f"[{colour}]{escape(issue.message)}[/]", highlight=False)
    if len(report.issues) > _SHOW_ISSUES:
        console.print(f"… {len(report.issues) - _SHOW_ISSUES} more messages (see the issues file)")
    console.print(f"行号 rows are counted as: {report.row_label}", highlight=False)


@app.command("import")
def import_cmd(
    kind: KindArg,
    file: FileArg,
    project: ProjectOpt = DEFAULT_PROJECT,
    coords: CoordsOpt = "wgs84",
    map_: MapOpt = None,
    layer: LayerOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="refuse the whole file if any row is rejected")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="replace the layer instead of appending")] = False,
    fix: FixOpt = False,
    values: ValuesOpt = None,
    add_categories: AddCategoriesOpt = False,
    save_mapping: Annotated[bool, typer.Option(
        "--save-mapping", help="save --map and --values into sanigrid.toml for the next import")] = False,
) -> None:
    """Import a file as a layer: check every row, import the good ones, write the rest to a rejects file."""
    from sanigrid.layers.columns import parse_mapping, parse_values
    from sanigrid.layers.importers import import_file

    p = load(project)
    rep = import_file(p, kind, file, coords=coords, mapping=parse_mapping(map_), layer=layer, strict=strict,
                      replace=replace, fix=fix, values=parse_values(values), add_categories=add_categories,
                      save_mapping=save_mapping)
    v = rep.validation
    _print_validation(v, title=f"{file.name} → {kind}")
    summary = Table(show_header=False, title="导入结果 import summary")
    summary.add_row("记录 rows read", str(v.total))
    summary.add_row("接受 accepted", f"[green]{rep.accepted}[/]")
    summary.add_row("拒绝 rejected", f"[red]{rep.rejected}[/]" if rep.rejected else "0")
    summary.add_row("警告 warnings", f"[yellow]{rep.warnings}[/]" if rep.warnings else "0")
    summary.add_row("写入 written", f"{rep.imported} ({'replaced the layer' if rep.replaced else 'appended'})"
                    if not rep.refused else "[red]0 (refused)[/]")
    console.print(summary)
    _print_path("拒绝文件 rejects file", rep.rejects_path)
    _print_path("问题清单 issues file", rep.issues_path)
    if rep.saved:
        console.print(f"已写入 saved into {p.settings_path.resolve()}: {', '.join(rep.saved)}", highlight=False,
                      soft_wrap=True)
    if rep.refused:
        console.print(f"[bold red]未导入 nothing imported:[/] {escape(rep.reason)}; the store is unchanged. "
                      "Correct the rows in the rejects file (or drop --strict) and import again.", highlight=False)
        raise typer.Exit(1)


@app.command("validate")
def validate_cmd(
    kind: KindArg,
    file: FileArg,
    project: ProjectOpt = DEFAULT_PROJECT,
    coords: CoordsOpt = "wgs84",
    map_: MapOpt = None,
    layer: LayerOpt = None,
    fix: FixOpt = False,
    values: ValuesOpt = None,
    add_categories: AddCategoriesOpt = False,
) -> None:
    """Check a file as a layer without importing it (exit status 1 if any row would be rejected).

    Nothing goes into the store; the messages are written to an issues file (in the project's
    ``outputs/``, or beside the file when there is no project)."""
    from sanigrid.layers.columns import parse_mapping, parse_values
    from sanigrid.layers.importers import import_file, issues_file_name, write_issues

    try:
        p = load(project)
    except SettingsError:
        p = None
    if p is None:  # no project here: default settings, no county boundary
        from sanigrid.layers.importers import read_file
        from sanigrid.layers.settings import Settings
        from sanigrid.layers.validation import validate

        v = validate(kind, read_file(file, kind=kind, coords=coords, mapping=parse_mapping(map_), layer=layer,
                                     values=parse_values(values)),
                     settings=Settings(), fix=fix)
        v.notes.append("no sanigrid project here (--project): checked with the default settings")
    else:
        v = import_file(p, kind, file, coords=coords, mapping=parse_mapping(map_), layer=layer, fix=fix,
                        write=False, values=parse_values(values), add_categories=add_categories).validation
    _print_validation(v, title=f"{file.name} as {kind}")
    console.print(f"{v.total} rows: [green]{len(v.accepted)} would be accepted[/], "
                  f"[red]{len(v.rejects)} rejected[/], [yellow]{len(v.warnings)} warnings[/] (nothing imported)",
                  highlight=False)
    if v.issues:
        name = issues_file_name(kind, file)
        _print_path("问题清单 issues file", write_issues(v, p.new_output_path(name) if p else file.parent / name))
    if len(v.rejects):
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    kind: Annotated[str, typer.Argument(help="layer kind, e.g. problems, grids, coverage_gaps")],
    file: Annotated[Path, typer.Argument(help="target: .xlsx .csv .geojson .gpkg or .shp")],
    project: ProjectOpt = DEFAULT_PROJECT,
    encoding: Annotated[str, typer.Option(help="Shapefile attribute encoding (GBK, or UTF-8)")] = "GBK",
) -> None:
    """Export one layer for Excel, QGIS/ArcGIS or another system (导出图层)."""
    from sanigrid.layers.catalogue import spec
    from sanigrid.layers.export import export_layer

    spec(kind)
    p = load(project)
    frame = p.store.read(kind)
    path = export_layer(frame, kind, file, encoding=encoding)
    console.print(f"已导出 exported {len(frame)} {kind} → {path}")
