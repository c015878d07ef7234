"""The `doorstep` command: serve, migrate, seed the demo, create users, train models."""

from __future__ import annotations

import gc
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from doorstep.config import ConfigurationError, get_settings

app = typer.Typer(help="Doorstep: one live picture of a brokerage's work.", no_args_is_help=True)
console = Console(stderr=True)
ROOT = Path(__file__).resolve().parents[2]


def _alembic_config(database_url: str) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def run_migrations(database_url: str) -> None:
    from alembic import command

    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(database_url), "head")  # type: ignore[arg-type]


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = get_settings()
    run_migrations(settings.database_url)
    console.print("[green]database is up to date[/green]")


def _seed(*, only_when_empty: bool) -> None:
    from sqlalchemy import func, select

    from doorstep.demo import demo_steps, seed_demo
    from doorstep.platform.audit import set_actor
    from doorstep.platform.auth import User
    from doorstep.platform.db import make_engine, make_sessionmaker, transaction

    settings = get_settings()
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        if only_when_empty and (session.scalar(select(func.count()).select_from(User)) or 0) > 0:
            console.print("database already has data; not seeding")
            return
        set_actor(session, "seed-demo")
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("seeding demo data", total=demo_steps())

            def step(name: str) -> None:
                progress.update(task, advance=1, description=name)

            seed_demo(session, password=settings.demo_password, progress=step)
    engine.dispose()
    console.print("[green]demo data is in place[/green]")


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo tenants, people and data (deterministic; a second run changes nothing)."""
    _seed(only_when_empty=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default DOORSTEP_PORT or 8000)")] = None,
) -> None:
    """Serve the platform (one process; see the README for production)."""
    import uvicorn

    from doorstep.platform.wsserver import WS_PROTOCOL

    settings = get_settings()
    try:
        settings.resolved_secret_key()
    except ConfigurationError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    uvicorn.run(
        "doorstep.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        proxy_headers=True,
        ws=WS_PROTOCOL,  # uvicorn's, offering prebuilt frames to the live hub
    )


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default DOORSTEP_PORT or 8000)")] = None,
) -> None:
    """Migrate, load the demo data when the database is empty, and serve."""
    migrate()
    _seed(only_when_empty=True)
    settings = get_settings()
    console.print(
        f"[bold]Doorstep is at http://{host or settings.host}:{port or settings.port}[/bold] "
        f"(sign in as broker@doorstep.demo / {settings.demo_password})"
    )
    serve(host=host, port=port)


@app.command()
def worker(
    workers: Annotated[int, typer.Option(min=1, max=64, help="Job threads in this process")] = 4,
) -> None:
    """Run background jobs from Redis (production). The embedded mode runs them in the server."""
    import doorstep.app  # noqa: F401 - importing the app registers every module's jobs
    from doorstep.platform.db import make_engine, make_sessionmaker
    from doorstep.platform.jobs import JobRunner

    settings = get_settings()
    if not settings.redis_url:
        console.print(
            "[yellow]DOORSTEP_REDIS_URL is not set: this worker will share the embedded SQLite "
            "queue with the server, which already runs jobs itself.[/yellow]"
        )
    from doorstep.reports import render

    runner = JobRunner(settings, make_sessionmaker(make_engine(settings.database_url)))
    # Pay the report writers' start-up (imports, the chart engine: seconds) before the first job.
    render.warm_up()
    if settings.freeze_gc:  # as the server does after start-up (Settings.freeze_gc)
        gc.collect()
        gc.freeze()
    console.print(f"[green]worker started with {workers} threads[/green]")
    runner.run_worker(workers)


train_app = typer.Typer(help="Train prediction models and store them.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _metric_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="Held-out evaluation")
    table.add_column("metric")
    table.add_column("baseline", justify="right")
    table.add_column("trained", justify="right")
    for key, name in (
        ("accuracy", "Accuracy (at 0.5)"),
        ("roc_auc", "ROC AUC"),
        ("brier", "Brier score"),
        ("closing_mae_days", "Closing-date MAE (days)"),
        ("interval_coverage", "Closing interval coverage"),
    ):
        values = [metrics[side].get(key) for side in ("baseline", "trained")]
        table.add_row(name, *("n/a" if v is None else f"{v:.3f}" for v in values))
    return table


@train_app.command("delay")
def train_delay(
    tenant: Annotated[
        str | None, typer.Option(help="Train on this tenant's ended deals (its slug)")
    ] = None,
    simulated: Annotated[
        int, typer.Option(min=50, help="How many simulated deals to train on (simulator)")
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the simulator and of the split")] = 7,
) -> None:
    """Train the delay and closing-date model, compare it with the baseline on held-out deals,
    and make it the active model (of the tenant, or the global one from the simulator)."""
    from sqlalchemy import select

    from doorstep.platform.audit import set_actor
    from doorstep.platform.auth import Tenant
    from doorstep.platform.db import make_engine, make_sessionmaker, transaction
    from doorstep.transactions import predict

    settings = get_settings()
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    out = Console()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("preparing", total=10)

        def step(name: str) -> None:
            progress.update(task, advance=1, description=name)

        tenant_id: int | None = None
        rows: list[predict.TrainingRow] = []
        with transaction(factory) as session:
            if tenant is not None:
                found = session.scalar(select(Tenant).where(Tenant.slug == tenant))
                if found is None:
                    console.print(f"[red]No tenant '{tenant}'[/red]")
                    raise typer.Exit(2)
                rows, ended = predict.rows_from_tenant(session, tenant_id=found.id, progress=step)
                if ended < predict.MIN_TENANT_DEALS:
                    progress.console.print(
                        f"[yellow]{found.name} has {ended} closed or cancelled deals, fewer than "
                        f"{predict.MIN_TENANT_DEALS}: training on {simulated} simulated deals "
                        "instead (stored as the global model).[/yellow]"
                    )
                    rows = []
                else:
                    tenant_id = found.id
        if not rows:
            step(f"simulating {simulated} deals")
            rows, _deals = predict.simulated_rows(simulated, seed=seed)
        model = predict.train(
            rows,
            seed=seed,
            trained_on="tenant" if tenant_id is not None else "simulator",
            label=tenant if tenant_id is not None and tenant else "sim",
            progress=step,
        )
        with transaction(factory) as session:
            set_actor(session, "cli")
            predict.store(session, model, tenant_id=tenant_id)
        progress.update(task, completed=10, description="done")
    engine.dispose()
    held = model.metrics["held_out"]
    out.print(_metric_table(model.metrics))
    out.print(
        f"held out: {held['deals']} deals, {held['snapshots']} snapshots, "
        f"{held['late_or_cancelled_share']:.1%} late or cancelled",
        soft_wrap=True,
    )
    selection = ", ".join(f"{k} {v:.4f}" for k, v in model.metrics["selection_brier"].items())
    out.print(f"classifier: {model.family} (validation Brier: {selection})", soft_wrap=True)
    scope = f"tenant {tenant}" if tenant_id is not None else "global, simulator"
    out.print(f"stored: {model.version} (active, {scope})", soft_wrap=True)


def _train_sales(which: str, tenant: str | None) -> None:
    """Train the analytics models (churn, demand, LTV) on a tenant's warehouse, each in its own
    transaction; a model without enough data is reported and the others still train."""
    from sqlalchemy import select

    from doorstep.analytics import ml, training
    from doorstep.analytics.models import DailySalesSummary
    from doorstep.platform.auth import Tenant
    from doorstep.platform.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(get_settings().database_url)
    factory = make_sessionmaker(engine)
    names = training.MODELS if which == "all" else (which,)
    failed = False
    with transaction(factory) as session:
        if tenant is not None:
            found = session.scalar(select(Tenant).where(Tenant.slug == tenant))
            tenants = [found] if found is not None else []
            if not tenants:
                console.print(f"[red]No tenant '{tenant}'[/red]")
                raise typer.Exit(2)
        else:
            with_sales = select(DailySalesSummary.tenant_id).distinct()
            tenants = list(session.scalars(select(Tenant).where(Tenant.id.in_(with_sales))))
        targets = [(t.id, t.name) for t in tenants]
    if not targets:
        console.print(
            "[yellow]No tenant has sales in its warehouse yet: nothing to train.[/yellow]"
        )
    table = Table(title="Sales models")
    for column in ("tenant", "model", "version", "rows", "figures"):
        table.add_column(column)
    with Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
        console=console,
    ) as progress:  # fmt: skip
        task = progress.add_task("training", total=len(targets) * len(names))
        for tenant_id, name in targets:
            for model in names:
                progress.update(task, description=f"{name}: {model}")
                try:
                    with transaction(factory) as session:
                        done = training.train(session, tenant_id, model)[0]
                    figures = ", ".join(f"{k} {v}" for k, v in done.metrics.items())
                    table.add_row(name, model, done.model_version, f"{done.rows:,}", figures)
                except ml.NotEnoughData as exc:
                    failed = True
                    table.add_row(name, model, "-", "0", f"[yellow]not trained: {exc}[/yellow]")
                progress.advance(task)
    engine.dispose()
    Console(width=200).print(table)
    if failed and tenant is not None:
        raise typer.Exit(1)


TenantOption = Annotated[
    str | None, typer.Option(help="The tenant's slug (default: every tenant with sales)")
]


@train_app.command("churn")
def train_churn(tenant: TenantOption = None) -> None:
    """Churn probability per customer (RandomForest; AUC held out in time)."""
    _train_sales("churn", tenant)


@train_app.command("demand")
def train_demand(tenant: TenantOption = None) -> None:
    """7-day demand forecast per product with intervals (LightGBM; MASE backtest)."""
    _train_sales("demand", tenant)


@train_app.command("ltv")
def train_ltv(tenant: TenantOption = None) -> None:
    """Predicted 52-week customer value (BG/NBD + Gamma-Gamma)."""
    _train_sales("ltv", tenant)


@train_app.command("all")
def train_all(tenant: TenantOption = None) -> None:
    """Churn, demand and LTV, one after another."""
    _train_sales("all", tenant)


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(prompt=True, help="Sign-in e-mail")],
    full_name: Annotated[str, typer.Option(prompt=True, help="Name shown on pages")],
    role: Annotated[str, typer.Option(prompt=True, help="admin, broker, agent, client or analyst")],
    tenant: Annotated[str, typer.Option(prompt=True, help="Tenant slug, e.g. riley-realty")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password")
    ],
    tenant_name: Annotated[
        str | None, typer.Option(help="Create the tenant with this name if it does not exist")
    ] = None,
) -> None:
    """Create a user (and, with --tenant-name, their tenant)."""
    from pydantic import ValidationError
    from sqlalchemy import select

    from doorstep.platform import accounts
    from doorstep.platform.audit import set_actor
    from doorstep.platform.auth import Principal, Role, Tenant
    from doorstep.platform.db import make_engine, make_sessionmaker, transaction
    from doorstep.platform.errors import DoorstepError
    from doorstep.platform.schemas import UserCreate

    settings = get_settings()
    factory = make_sessionmaker(make_engine(settings.database_url))
    try:
        data = UserCreate(email=email, full_name=full_name, role=role, password=password)
        with transaction(factory) as session:
            set_actor(session, "cli")
            row = session.scalar(select(Tenant).where(Tenant.slug == tenant))
            if row is None:
                if not tenant_name:
                    raise DoorstepError(f"No tenant '{tenant}'; pass --tenant-name to create it")
                row = Tenant(slug=tenant, name=tenant_name)
                session.add(row)
                session.flush()
            # The CLI acts as the tenant's administrator.
            operator = Principal(
                user_id=0, tenant_id=row.id, role=Role.admin, email="cli", full_name="CLI"
            )
            user = accounts.create_user(session, principal=operator, data=data)
            console.print(f"[green]created {user.role} {user.email} in {row.name}[/green]")
    except ValidationError as exc:
        for err in exc.errors():
            console.print(f"[red]{'.'.join(map(str, err['loc']))}: {err['msg']}[/red]")
        raise typer.Exit(2) from exc
    except DoorstepError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from exc


def _square_tenant(session: Any, slug: str | None) -> Any:
    """The tenant named by `slug`, or the only one with a Square token; exit 2 otherwise."""
    from sqlalchemy import select

    from doorstep.analytics.models import AnalyticsSource
    from doorstep.platform.auth import Tenant

    if slug is not None:
        found = session.scalar(select(Tenant).where(Tenant.slug == slug))
        if found is None:
            console.print(f"[red]No tenant '{slug}'[/red]")
            raise typer.Exit(2)
        return found
    connected = list(
        session.scalars(
            select(Tenant)
            .join(AnalyticsSource, AnalyticsSource.tenant_id == Tenant.id)
            .where(AnalyticsSource.square_token != "")
            .order_by(Tenant.slug)
        )
    )
    if len(connected) == 1:
        return connected[0]
    if not connected:
        console.print(
            "[red]No tenant has a Square access token; set one with "
            "`doorstep square-token --tenant SLUG`[/red]"
        )
    else:
        slugs = ", ".join(t.slug for t in connected)
        console.print(f"[red]Several tenants have a Square token ({slugs}); pass --tenant[/red]")
    raise typer.Exit(2)


@app.command("sync-square")
def sync_square_command(
    tenant: Annotated[
        str | None,
        typer.Option(help="The tenant's slug (default: the one tenant with a Square token)"),
    ] = None,
    all_orders: Annotated[
        bool, typer.Option("--all", help="Read every order again (a full backfill)")
    ] = False,
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Read the orders updated since this day (YYYY-MM-DD, the tenant's time zone)",
        ),
    ] = None,
) -> None:
    """Load a tenant's Square locations, customers and orders into the analytics warehouse.
    Without --all or --since, only what changed since the last sync (minus 72 hours, for
    orders taken offline)."""
    from doorstep.analytics.square import SquareAuthError, SquareError
    from doorstep.analytics.sync import SyncError, sync_square
    from doorstep.platform.db import make_engine, make_sessionmaker

    if all_orders and since is not None:
        console.print("[red]--all and --since exclude each other[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    try:
        with factory() as session:
            found = _square_tenant(session, tenant)
            tenant_id, name = found.id, found.name
            start = since.replace(tzinfo=found.zone) if since is not None else None
        mode = "all orders" if all_orders else f"since {since:%Y-%m-%d}" if since else "new orders"
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} orders"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(f"Square → {name} ({mode})", total=None)
            report = sync_square(
                factory,
                tenant_id,
                full=all_orders,
                since=start,
                progress=lambda n: progress.update(task, advance=n),
            )
    except SquareAuthError as exc:
        console.print(f"[red]Square refused the access token: {exc}[/red]")
        raise typer.Exit(2) from None
    except SyncError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except SquareError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    out = Console()
    out.print(
        f"synced {report.orders} orders ({report.lines} lines, {report.removed} removed), "
        f"{report.customers} customers, {report.locations} locations in {report.pages} "
        f"page{'' if report.pages == 1 else 's'}, "
        f"{report.seconds:.1f} s",
        soft_wrap=True,
    )
    cursor = report.cursor.isoformat() if report.cursor else "none"
    out.print(f"cursor: {cursor}", soft_wrap=True)


@app.command("square-token")
def square_token_command(
    tenant: Annotated[str, typer.Option(help="The tenant's slug")],
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Square's API address (default: production, https://connect.squareup.com; "
            "the sandbox is https://connect.squareupsandbox.com)"
        ),
    ] = None,
) -> None:
    """Store a tenant's Square access token (asked for, never shown) for `sync-square` and the
    hourly sync."""
    from sqlalchemy import select

    from doorstep.analytics.models import AnalyticsSource
    from doorstep.platform.auth import Tenant
    from doorstep.platform.db import make_engine, make_sessionmaker, transaction

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            found = session.scalar(select(Tenant).where(Tenant.slug == tenant))
            if found is None:
                console.print(f"[red]No tenant '{tenant}'[/red]")
                raise typer.Exit(2)
            token = typer.prompt("Square access token", hide_input=True).strip()
            if not token:
                console.print("[red]The token is empty[/red]")
                raise typer.Exit(2)
            source = session.scalar(
                select(AnalyticsSource).where(AnalyticsSource.tenant_id == found.id)
            )
            if source is None:
                source = AnalyticsSource(tenant_id=found.id)
                session.add(source)
            source.square_token = token
            source.square_base_url = (base_url or "").strip().rstrip("/")
            name = found.name
    finally:
        engine.dispose()
    where = base_url or "Square production"
    console.print(f"[green]stored the Square access token of {name} ({where})[/green]")


if __name__ == "__main__":
    app()
