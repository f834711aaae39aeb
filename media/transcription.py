"""Speech to timed text: the engines that transcribe a video's sound, behind one small interface.

An engine takes a media file (any container ffmpeg reads) and a language, and returns the speech
as `Segment`s: a few seconds of text each, with their start and end in milliseconds, in order.
The sound is first taken out of the file by ffmpeg as 16 kHz mono PCM (`audio_command`), at most
`max_s` seconds of it, so an engine never reads more than that however long the file is.

- `PocketsphinxEngine` (the default): CMU PocketSphinx, whose wheel carries its US English model,
  so it works offline on a fresh machine with nothing else installed. Modest accuracy: good
  enough to find a video by its words, not a verbatim record.
- `FasterWhisperEngine`: Whisper through CTranslate2, far more accurate and multilingual, with
  a model directory the operator provides (`TRANSCRIPTION_MODEL_DIR`). The `faster-whisper`
  package is not a dependency of the product: install it beside it to use this engine.

Nothing here knows the database; the worker task in `fieldcast.transcripts` runs an engine and
stores what it returns.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SAMPLE_RATE = 16_000
# A segment ends at a pause this long, or once it lasts SEGMENT_MAX_MS: a caption a viewer can
# read while it shows.
PAUSE_MS = 600
SEGMENT_MAX_MS = 8_000
SEGMENT_MAX_CHARS = 200
ENGINES = ("pocketsphinx", "faster-whisper", "off")
# What PocketSphinx writes for silence, breath and noise, never words: `<s>`, `</s>`, `<sil>`,
# `[NOISE]`, `[SPEECH]`, `++NOISE++`.
_FILLER = re.compile(r"^(<[^>]*>|\[[^\]]*\]|\+\+[^+]*\+\+)$")
# An alternate pronunciation of a dictionary word: `price(2)`.
_ALTERNATE = re.compile(r"\(\d+\)$")


class TranscriptionUnavailable(Exception):
    """The configured engine cannot run here (its package or model is missing): an operator's
    matter, said in words."""


@dataclass(frozen=True)
class Segment:
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class Word:
    start_ms: int
    end_ms: int
    text: str


class Engine(Protocol):
    name: str

    def transcribe(self, audio_path: Path, language: str) -> list[Segment]:
        """The speech of the file at `audio_path` as timed segments, in order; [] for none.
        Raises TimeoutError past the engine's time limit, ffmpeg.FFmpegFailed when the sound
        cannot be read."""
        ...


def audio_command(binary: str, source: Path, target: Path, *, max_s: float) -> list[str]:
    """ffmpeg arguments taking the first `max_s` seconds of the source's first audio stream as
    16 kHz mono signed 16-bit PCM, raw, into `target`."""
    return [
        binary, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
        "-i", str(source), "-t", f"{max_s:g}",
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-acodec", "pcm_s16le",
        str(target),
    ]  # fmt: skip


def clean_word(token: str) -> str | None:
    """A recognised token as a word of the transcript, or None for silence and noise markers."""
    token = _ALTERNATE.sub("", token.strip())
    if not token or _FILLER.match(token):
        return None
    return token


def group_words(
    words: Iterable[Word],
    *,
    pause_ms: int = PAUSE_MS,
    max_ms: int = SEGMENT_MAX_MS,
    max_chars: int = SEGMENT_MAX_CHARS,
) -> list[Segment]:
    """Words in order joined into segments, a new one at each pause of `pause_ms` or more, or
    when the current one would last longer than `max_ms` or hold more than `max_chars`."""
    segments: list[Segment] = []
    current: list[Word] = []

    def close() -> None:
        if current:
            text = " ".join(w.text for w in current)
            segments.append(Segment(current[0].start_ms, current[-1].end_ms, text))
            current.clear()

    for word in words:
        if current:
            pause = word.start_ms - current[-1].end_ms
            length = word.end_ms - current[0].start_ms
            chars = sum(len(w.text) + 1 for w in current) + len(word.text)
            if pause >= pause_ms or length > max_ms or chars > max_chars:
                close()
        current.append(word)
    close()
    return segments


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.ends = time.monotonic() + timeout_s

    def left(self) -> float:
        return self.ends - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self.ends:
            raise TimeoutError(f"transcription ran longer than {self.timeout_s:.0f}s")


@dataclass
class _Extracting:
    """The sound of a file as raw PCM in a scratch directory, removed afterwards."""

    binary: str
    max_s: float
    work_dir: Path | None

    def pcm(self, source: Path, scratch: Path, deadline: _Deadline) -> Path:
        target = scratch / "audio.raw"
        # Imported here: settings read ENGINES, and ffmpeg's module brings PyAV along.
        from media import ffmpeg

        ffmpeg.run(
            audio_command(self.binary, source, target, max_s=self.max_s),
            timeout_s=max(1.0, deadline.left()),
        )
        return target

    def scratch(self) -> tempfile.TemporaryDirectory[str]:
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix="transcribe-", dir=self.work_dir)


class PocketsphinxEngine:
    """CMU PocketSphinx with the US English model inside its wheel.

    Speech is found with PocketSphinx's voice activity detector and each stretch of it decoded
    as one utterance, so memory stays bounded by the longest stretch, not by the file."""

    name = "pocketsphinx"
    languages = ("en",)

    def __init__(
        self,
        ffmpeg_binary: str,
        *,
        max_s: float = 900,
        timeout_s: float = 1800,
        work_dir: Path | None = None,
    ) -> None:
        self.extracting = _Extracting(ffmpeg_binary, max_s, work_dir)
        self.timeout_s = timeout_s

    def transcribe(self, audio_path: Path, language: str) -> list[Segment]:
        if language.split("-")[0].lower() not in self.languages:
            raise TranscriptionUnavailable(
                f"PocketSphinx transcribes English only, not {language!r}; "
                "use TRANSCRIPTION_ENGINE=faster-whisper for other languages"
            )
        deadline = _Deadline(self.timeout_s)
        with self.extracting.scratch() as scratch:
            pcm = self.extracting.pcm(audio_path, Path(scratch), deadline)
            return group_words(self._words(pcm, deadline))

    def _words(self, pcm: Path, deadline: _Deadline) -> list[Word]:
        try:
            from pocketsphinx import Decoder, Endpointer
        except ImportError as exc:  # pragma: no cover - a dependency of the product
            raise TranscriptionUnavailable(f"pocketsphinx is not installed: {exc}") from None
        decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        frame_ms = 1000 // int(decoder.config["frate"])
        endpointer = Endpointer(sample_rate=SAMPLE_RATE)
        words: list[Word] = []
        speech: list[bytes] = []
        start_s = 0.0
        position_s = 0.0

        def decode(frames: Sequence[bytes], offset_s: float) -> None:
            deadline.check()
            decoder.start_utt()
            decoder.process_raw(b"".join(frames), full_utt=True)
            decoder.end_utt()
            offset_ms = round(offset_s * 1000)
            for seg in decoder.seg():
                text = clean_word(seg.word)
                if text is not None:
                    start = offset_ms + seg.start_frame * frame_ms
                    end = offset_ms + (seg.end_frame + 1) * frame_ms
                    words.append(Word(start, max(end, start + 1), text))

        with pcm.open("rb") as stream:
            while True:
                frame = stream.read(endpointer.frame_bytes)
                if not frame:
                    break
                was_in_speech = endpointer.in_speech
                if len(frame) < endpointer.frame_bytes:
                    found = endpointer.end_stream(frame)
                else:
                    found = endpointer.process(frame)
                position_s += len(frame) / 2 / SAMPLE_RATE
                if found is None:
                    continue
                if not was_in_speech or not speech:
                    start_s = endpointer.speech_start
                speech.append(found)
                if not endpointer.in_speech:
                    decode(speech, start_s)
                    speech = []
        if speech:  # the sound ended mid-speech
            decode(speech, start_s)
        return words


class FasterWhisperEngine:
    """Whisper (CTranslate2) from a model directory the operator provides, on the CPU.

    `pip install faster-whisper` beside the product, and point TRANSCRIPTION_MODEL_DIR at a
    converted model (for example Systran/faster-whisper-small, downloaded once)."""

    name = "faster-whisper"

    def __init__(
        self,
        ffmpeg_binary: str,
        model_dir: Path,
        *,
        max_s: float = 900,
        timeout_s: float = 1800,
        work_dir: Path | None = None,
    ) -> None:
        self.extracting = _Extracting(ffmpeg_binary, max_s, work_dir)
        self.model_dir = model_dir
        self.timeout_s = timeout_s
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError:
                raise TranscriptionUnavailable(
                    "TRANSCRIPTION_ENGINE=faster-whisper needs the faster-whisper package: "
                    "pip install faster-whisper"
                ) from None
            if not (self.model_dir / "model.bin").is_file():
                raise TranscriptionUnavailable(
                    f"TRANSCRIPTION_MODEL_DIR {str(self.model_dir)!r} holds no model.bin"
                )
            self._model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8")
        return self._model

    def transcribe(self, audio_path: Path, language: str) -> list[Segment]:
        model = self._load()
        deadline = _Deadline(self.timeout_s)
        with self.extracting.scratch() as scratch:
            pcm = self.extracting.pcm(audio_path, Path(scratch), deadline)
            import numpy  # faster-whisper's own dependency

            samples = numpy.frombuffer(pcm.read_bytes(), dtype=numpy.int16)
            audio = samples.astype(numpy.float32) / 32768.0
            found, _ = model.transcribe(
                audio, language=language.split("-")[0].lower(), vad_filter=True
            )
            segments: list[Segment] = []
            for item in found:  # a generator: decoding happens as it is read
                deadline.check()
                text = " ".join(str(item.text).split())
                if text:
                    start = round(float(item.start) * 1000)
                    end = max(round(float(item.end) * 1000), start + 1)
                    segments.append(Segment(start, end, text))
            return segments


def engine_for(
    name: str,
    *,
    ffmpeg_binary: str,
    model_dir: Path | None = None,
    max_s: float = 900,
    timeout_s: float = 1800,
    work_dir: Path | None = None,
) -> Engine | None:
    """The engine configured by TRANSCRIPTION_ENGINE, or None when transcription is off."""
    if name == "off":
        return None
    if name == "pocketsphinx":
        return PocketsphinxEngine(
            ffmpeg_binary, max_s=max_s, timeout_s=timeout_s, work_dir=work_dir
        )
    if name == "faster-whisper":
        if model_dir is None:
            raise TranscriptionUnavailable("faster-whisper needs TRANSCRIPTION_MODEL_DIR")
        return FasterWhisperEngine(
            ffmpeg_binary, model_dir, max_s=max_s, timeout_s=timeout_s, work_dir=work_dir
        )
    raise ValueError(f"no transcription engine {name!r}; one of {', '.join(ENGINES)}")
