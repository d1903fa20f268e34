"""Settings: one typed object, read from `KONVRT_*` environment variables, built once at start-up."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

MiB = 1024 * 1024
GiB = 1024 * MiB


def _default_workers() -> int:
    # Each worker's FFmpeg gets cpu/workers threads; one worker per two cores keeps both busy
    # without thrashing caches, and leaves the API responsive.
    return max(1, (os.cpu_count() or 1) // 2)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KONVRT_", extra="ignore")

    data_dir: Path = Field(Path("konvrt-data"), description="Where the embedded database and local files live.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in the data dir.")
    storage_url: str = Field("", description="Where uploads and outputs are kept; empty means the data dir.")
    public_url: str = Field("", description="Base URL printed in examples (defaults to the listen address).")

    workers: int = Field(default_factory=_default_workers, ge=0, description="Encode workers per machine.")
    ffmpeg_threads: int = Field(0, ge=0, description="Threads per FFmpeg; 0 means cores / workers.")
    ffmpeg_path: str = Field("", description="A system ffmpeg to use instead of the bundled one.")
    ffmpeg_nice: int = Field(10, ge=0, le=19, description="Scheduling niceness of FFmpeg.")

    max_video_bytes: int = Field(2 * GiB, description="Largest video upload, in bytes.")
    max_image_bytes: int = Field(50 * MiB, description="Largest image upload, in bytes.")
    max_image_pixels: int = Field(
        100_000_000, ge=1, description="Largest image decoded, in pixels (width x height x frames)."
    )
    image_threads: int = Field(0, ge=0, description="Image conversions run at once; 0 means one per core.")
    image_queue: int = Field(0, ge=0, description="Image conversions that may wait for a thread; 0 means 4 per thread.")
    upload_idle_timeout_seconds: float = Field(60, description="Drop an upload when no bytes arrive for this long.")
    max_duration_seconds: float = Field(4 * 3600, description="Longest video accepted, in seconds.")
    max_video_pixels: int = Field(7680 * 4320, description="Largest video frame accepted, in pixels (8K).")
    job_timeout_seconds: float = Field(6 * 3600, description="Hard wall-clock limit of one encode.")
    stall_timeout_seconds: float = Field(120, description="Kill an encode whose progress stops this long.")
    # Heartbeats come every second, so 20 s rides out a database hiccup and still re-runs a dead worker's
    # job well within 30 s of its death.
    lease_seconds: float = Field(20, description="How long a worker's claim on a job lasts without a heartbeat.")
    max_attempts: int = Field(3, ge=1, description="Times a job is tried before it fails for good.")
    download_ttl_seconds: float = Field(24 * 3600, description="Seconds an output stays downloadable after completion.")
    sweep_interval_seconds: float = Field(60, description="How often expired outputs and leases are swept.")

    credit_bytes: int = Field(20 * MiB, description="Bytes of input per credit unit for a video job.")
    codec_factor_h264: int = Field(1, description="Credit multiplier for h264.")
    codec_factor_h265: int = Field(2, description="Credit multiplier for h265.")
    codec_factor_av1: int = Field(2, description="Credit multiplier for av1.")
    image_credits: int = Field(1, description="Credits charged per image conversion.")
    pro_credits: int = Field(500, description="Credits included with the pro plan.")
    team_credits: int = Field(2000, description="Credits included with the team plan.")

    webhook_allow_private: bool = Field(
        False, description="Allow webhook URLs on private, loopback and link-local addresses (intranets, tests)."
    )
    webhook_timeout_seconds: float = Field(10, gt=0, description="How long one webhook attempt may take.")
    webhook_retry_schedule: list[float] = Field(
        [10, 60, 300, 1800, 7200, 21600],
        description="Seconds to wait before each retry of a failed webhook (JSON list); then it is given up.",
    )
    webhook_retry_jitter: float = Field(
        0.1, ge=0, le=1, description="Each retry delay is scaled by a random factor within 1 ± this fraction."
    )
    webhook_senders: int = Field(8, ge=1, description="Threads delivering webhooks per process (none is an encoder).")
    webhook_poll_seconds: float = Field(0.25, gt=0, description="How often idle webhook senders look for due events.")
    webhook_secret_overlap_hours: float = Field(
        24, ge=0, description="Hours a rotated-out webhook secret keeps signing alongside the new one."
    )

    ratelimit_url: str = Field(
        "", description="Where rate-limit counters live: empty or memory:// for this process, redis://… to share them."
    )
    ratelimit_window_seconds: int = Field(60, ge=1, description="Length of the moving rate-limit window, in seconds.")
    ratelimit_pro: int = Field(60, ge=1, description="Requests per window for a pro account (all keys, all endpoints).")
    ratelimit_team: int = Field(
        60, ge=1, description="Requests per window for a team account (all keys, all endpoints)."
    )
    ratelimit_per_address: int = Field(
        60, ge=1, description="Requests per window from one client address that fail authentication."
    )
    idempotency_ttl_seconds: float = Field(
        24 * 3600, gt=0, description="How long an Idempotency-Key replays its first answer."
    )
    idempotency_wait_seconds: float = Field(
        60, ge=0, description="How long a retry waits for the first request with its Idempotency-Key before a 409."
    )

    demo_account: bool = Field(True, description="On first start with an empty database, create a demo pro account.")

    queue_url: str = Field("", description="Wakes workers elsewhere: empty polls the database; redis:// pushes.")
    s3_endpoint_url: str = Field("", description="S3-compatible endpoint (MinIO, R2…); empty means AWS.")
    s3_access_key_id: str = Field("", description="S3 access key; empty means boto3's usual credential chain.")
    s3_secret_access_key: str = Field("", description="S3 secret key, with s3_access_key_id.")
    s3_region: str = Field("", description="S3 region; empty means boto3's default.")
    s3_presigned_downloads: bool = Field(
        False, description="Answer downloads with a redirect to a short-lived presigned S3 URL instead of streaming."
    )
    s3_part_bytes: int = Field(8 * MiB, ge=5 * MiB, description="Multipart upload part size for S3 (at least 5 MiB).")
    pro_concurrency: int = Field(4, ge=0, description="Jobs of one pro account encoded at once; 0 means no cap.")
    team_concurrency: int = Field(8, ge=0, description="Jobs of one team account encoded at once; 0 means no cap.")
    log_format: str = Field("text", pattern="^(text|json)$", description="Log lines as text or one JSON object each.")
    metrics_port: int = Field(0, ge=0, description="`konvrt worker` serves /metrics on this port; 0 means off.")

    @cached_property
    def resolved_database_url(self) -> str:
        # Built, not formatted: a data dir named with a space, %, ? or # must not turn into URL syntax.
        return self.database_url or URL.create("sqlite", database=str(self.data_dir / "konvrt.db")).render_as_string()

    @cached_property
    def ffmpeg_exe(self) -> str:
        if self.ffmpeg_path:
            return self.ffmpeg_path
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())

    def threads_per_encode(self) -> int:
        if self.ffmpeg_threads:
            return self.ffmpeg_threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))

    def codec_factor(self, codec: str) -> int:
        return {"h264": self.codec_factor_h264, "h265": self.codec_factor_h265, "av1": self.codec_factor_av1}[codec]

    def concurrency_cap(self, plan: str) -> int:
        return {"free": 0, "pro": self.pro_concurrency, "team": self.team_concurrency}[plan]

    def included_credits(self, plan: str) -> int:
        return {"free": 0, "pro": self.pro_credits, "team": self.team_credits}[plan]
