"""Measured generation speed in the store (the ``model_speeds`` table of migration 4): one row per model and
Ollama host holding the latest benchmark's figures and the pooled ``eval_count`` / ``eval_duration`` of every
benchmark and every use recorded with them. ``SpeedTables`` holds ``Store``'s methods on them; the functions
here run inside the caller's transaction. The records (``measured``) are imported on first use: most stores
have measured nothing, and the command line's start-up need not build them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .schema import Tables, Transaction, utc_now

if TYPE_CHECKING:
    from ..measured import BenchmarkRun, MeasuredSpeed

_POOL = """INSERT INTO model_speeds (model, host, eval_tokens, eval_s, samples, updated_at)
           VALUES (?, ?, ?, ?, 1, ?)
           ON CONFLICT (model, host) DO UPDATE SET
             eval_tokens = model_speeds.eval_tokens + excluded.eval_tokens,
             eval_s = model_speeds.eval_s + excluded.eval_s,
             samples = model_speeds.samples + 1,
             updated_at = excluded.updated_at"""

_BENCH = """UPDATE model_speeds SET bench_at = ?, bench_tag = ?, bench_image = ?, bench_cold = ?, bench_load_s = ?,
              bench_prompt_tokens = ?, bench_prompt_s = ?, bench_eval_tokens = ?, bench_eval_s = ?
            WHERE model = ? AND host = ?"""


def pool(tx: Transaction, model: str, host: str, eval_tokens: int, eval_s: float, at: str) -> None:
    """Add one generation's tokens and seconds to what ``host`` has measured of ``model``."""
    tx.execute(_POOL, (model, host, eval_tokens, eval_s, at))


def save_benchmark(tx: Transaction, run: BenchmarkRun) -> None:
    """``run`` becomes the latest benchmark of its model on its host, and its generation is pooled."""
    pool(tx, run.model, run.host, run.eval_tokens, run.eval_s, run.at)
    tx.execute(
        _BENCH,
        (
            run.at,
            run.ollama_tag,
            int(run.with_image),
            int(run.cold),
            run.load_s,
            run.prompt_tokens,
            run.prompt_s,
            run.eval_tokens,
            run.eval_s,
            run.model,
            run.host,
        ),
    )


def from_row(row: Any) -> MeasuredSpeed:
    from ..measured import BenchmarkRun, MeasuredSpeed

    bench = None
    if row["bench_at"] is not None:
        bench = BenchmarkRun(
            model=row["model"],
            host=row["host"],
            ollama_tag=row["bench_tag"] or "",
            at=row["bench_at"],
            with_image=bool(row["bench_image"]),
            cold=bool(row["bench_cold"]),
            load_s=float(row["bench_load_s"] or 0.0),
            prompt_tokens=int(row["bench_prompt_tokens"] or 0),
            prompt_s=float(row["bench_prompt_s"] or 0.0),
            eval_tokens=int(row["bench_eval_tokens"] or 0),
            eval_s=float(row["bench_eval_s"] or 0.0),
        )
    return MeasuredSpeed(
        row["model"], row["host"], int(row["eval_tokens"]), float(row["eval_s"]), int(row["samples"]), bench
    )


class SpeedTables(Tables):
    """The measured-speed methods of ``Store`` (which provides ``_read`` and ``_write``), used by ``benchmark``."""

    def save_benchmark(self, run: BenchmarkRun) -> None:
        """Keep ``run`` as its model's latest benchmark on its host and pool its generation timing."""
        with self._write() as tx:
            save_benchmark(tx, run)

    def record_usage_timing(
        self, model: str, seconds: float, success: bool, *, host: str, eval_tokens: int, eval_s: float
    ) -> None:
        """``record_usage``, and the use's generation timing pooled into ``model``'s measured speed on
        ``host``, in one transaction."""
        at = utc_now()
        with self._write() as tx:
            tx.execute(
                "INSERT INTO usage_events (model, at, seconds, success, host) VALUES (?, ?, ?, ?, ?)",
                (model, at, seconds, int(success), host),
            )
            pool(tx, model, host, eval_tokens, eval_s, at)

    def measured_speeds(self, host: str) -> dict[str, MeasuredSpeed]:
        """What ``host`` has measured, by model name as stored."""
        rows = self._read("SELECT * FROM model_speeds WHERE host = ?", (host,))
        return {r["model"]: from_row(r) for r in rows}

    def measured_speed(self, model: str, host: str) -> MeasuredSpeed | None:
        rows = self._read("SELECT * FROM model_speeds WHERE model = ? AND host = ?", (model, host))
        return from_row(rows[0]) if rows else None
