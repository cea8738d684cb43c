#!/usr/bin/env bash
# arm64 check (opt-in, `make bench-arm64`): run the Raspberry Pi runner's eval under qemu
# user-mode emulation with arm64 wheels of numpy, soundfile, soxr and ai-edge-litert, and check
# that its per-clip scores match the x86 run on the same files and model within a tolerance.
#
# What it does (Debian/Ubuntu host; apt-get and debootstrap need root, sudo is used otherwise):
#   1. apt-get install qemu-user-static debootstrap (when missing)
#   2. an arm64 Python: debootstrap --download-only the Debian packages of python3 (bookworm =
#      Raspberry Pi OS 12, Python 3.11) and unpack them into a sysroot (no chroot, no binfmt)
#   3. arm64 wheels: pip download --only-binary=:all: --platform manylinux_2_27_aarch64 ...,
#      unpacked with pip install --target (the x86 pip does it; nothing runs emulated)
#   4. the data: the synthetic dataset (lean-kd data synth) labelled with YAMNet class names,
#      unless DATA (and LABELS) are given
#   5. eval on x86 (.venv), then the same eval under qemu-aarch64-static -L sysroot
#   6. compare: same clips and windows, max |score difference| <= TOLERANCE, |mAP difference| <=
#      TOLERANCE, and the top-1 class the same on every clip except near ties (x86 margin between
#      the two classes <= TOLERANCE); the report goes to $WORK/arm64_check.md
#   7. a bench smoke run under emulation (report marked emulated; its timings are NOT device
#      figures and are not printed), then one on the compiled engine: it must run on a
#      Cortex-A76 and be refused in one line on a Cortex-A72 (its library needs ARMv8.1 atomics)
#
# Two facts this needed (qemu 7.2, ai-edge-litert 2.3):
#   - under qemu-user /proc/cpuinfo is the x86 host's; the cpuinfo library inside XNNPACK then
#     crashes (SIGSEGV) when the Interpreter is created. qemu reads files under the -L prefix
#     first, so a Raspberry Pi 4 style sysroot/proc/cpuinfo fixes it.
#   - with QEMU_CPU=max the scores are wrong (even the log-mel output differs); with the Pi's
#     own cores (cortex-a72: Pi 4, cortex-a76: Pi 5) they match x86. Default: cortex-a72.
#
# Environment: MODEL, LABELS, DATA, TOLERANCE (0.02), QEMU_CPU (cortex-a72), ARM64_WORK
# (runs/arm64_check), PYTHON (.venv/bin/python), DEBIAN_SUITE (bookworm), DEBIAN_MIRROR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${ARM64_WORK:-$REPO/runs/arm64_check}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export QEMU_CPU="${QEMU_CPU:-cortex-a72}"
MODEL="${MODEL:-${LEAN_KD_YAMNET:-$REPO/../shared/pretrained/yamnet/yamnet.tflite}}"
LABELS="${LABELS:-$(dirname "$MODEL")/yamnet_class_map.csv}"
DATA="${DATA:-}"
TOLERANCE="${TOLERANCE:-0.02}"
SYSROOT="$WORK/sysroot"
SITE="$WORK/site-packages"
PLATFORMS=(--platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64
           --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64)

log() { printf '[arm64-check] %s\n' "$*"; }
die() { printf '[arm64-check] error: %s\n' "$*" >&2; exit 2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_tools() {
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found: this check needs a Debian or Ubuntu host"
    local missing=()
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

make_sysroot() {
    if ! ls "$SYSROOT"/usr/bin/python3.* >/dev/null 2>&1; then
        log "downloading arm64 python3 packages of Debian $SUITE (debootstrap --download-only)"
        as_root debootstrap --arch=arm64 --variant=minbase --include=python3 --download-only \
            "$SUITE" "$WORK/debootstrap" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
            || die "debootstrap failed, see $WORK/debootstrap.log"
        mkdir -p "$SYSROOT"
        for deb in "$WORK"/debootstrap/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
    fi
    mkdir -p "$SYSROOT/proc"
    # the emulated core's /proc/cpuinfo: a Pi 4's Cortex-A72 (ARMv8.0) or a Pi 5's Cortex-A76
    # (ARMv8.2: atomics, dot products)
    local cpus features part board
    case "$QEMU_CPU" in
        cortex-a76) features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
                    part=0xd0b board="Raspberry Pi 5 Model B" ;;
        *) features="fp asimd evtstrm crc32 cpuid" part=0xd08 board="Raspberry Pi 4 Model B" ;;
    esac
    cpus=$(nproc)
    for ((i = 0; i < cpus; i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\n' "$i" "$features"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 3\n\n' "$part"
    done >"$SYSROOT/proc/cpuinfo"
    printf 'Hardware\t: BCM2835\nModel\t\t: %s (qemu-aarch64 emulation)\n' "$board" >>"$SYSROOT/proc/cpuinfo"
    ARM_PYTHON=$(ls "$SYSROOT"/usr/bin/python3.* | grep -E 'python3\.[0-9]+$' | head -1)
    PYVER=${ARM_PYTHON##*python}
    log "arm64 Python $PYVER at $ARM_PYTHON"
}

install_wheels() {
    log "arm64 wheels (cp${PYVER/./}, manylinux aarch64) into $SITE"
    local pins=(--only-binary=:all: "${PLATFORMS[@]}" --python-version "$PYVER" --implementation cp)
    "$PYTHON" -m pip download --quiet "${pins[@]}" -d "$WORK/wheels" -r "$HERE/requirements.txt" soxr
    "$PYTHON" -m pip install --quiet --upgrade --no-index --find-links "$WORK/wheels" "${pins[@]}" \
        --target "$SITE" -r "$HERE/requirements.txt" soxr
}

make_data() {
    [ -n "$DATA" ] && return 0
    [ -f "$MODEL" ] || die "no model at $MODEL: set MODEL (and LABELS, DATA) or LEAN_KD_YAMNET"
    log "data: synthetic clips (lean-kd data synth) labelled with YAMNet class names"
    "$PYTHON" -m lean_kd.cli.main data synth --out "$WORK/synth" --clips-per-class 4 >/dev/null 2>"$WORK/synth.log" \
        || die "lean-kd data synth failed, see $WORK/synth.log"
    "$PYTHON" - "$WORK/synth" <<'EOF'
import csv, sys
from pathlib import Path
yamnet = {"siren": "Siren", "alarm_beep": "Alarm", "engine_hum": "Engine", "knock": "Knock",
          "bird_chirp": "Bird", "rain": "Rain", "speech_babble": "Speech", "dog_bark": "Dog",
          "whistle": "Whistle", "chime_bell": "Bell"}
root = Path(sys.argv[1])
rows = list(csv.DictReader((root / "manifest.csv").open()))
with (root / "yamnet_manifest.csv").open("w", newline="") as out:
    writer = csv.writer(out)
    writer.writerow(["path", "labels", "split"])
    for row in rows:
        writer.writerow([row["path"], ";".join(yamnet[n] for n in row["labels"].split(";")), row["split"]])
EOF
    DATA="$WORK/synth/yamnet_manifest.csv"
}

run_eval() {  # $1: x86 | arm64
    local out="$WORK/eval_$1.json"
    local args=(eval --model "$MODEL" --data "$DATA" --json "$out")
    [ -n "$LABELS" ] && [ -f "$LABELS" ] && args+=(--labels "$LABELS")
    log "eval on $1"
    if [ "$1" = x86 ]; then
        (cd "$HERE" && "$PYTHON" -m lean_kd_pi "${args[@]}")
    else
        (cd "$HERE" && PYTHONPATH="$SITE" PYTHONNOUSERSITE=1 \
            qemu-aarch64-static -L "$SYSROOT" "$ARM_PYTHON" -m lean_kd_pi "${args[@]}")
    fi
}

compare() {
    "$PYTHON" - "$WORK/eval_x86.json" "$WORK/eval_arm64.json" "$TOLERANCE" "$WORK/arm64_check.md" "$QEMU_CPU" <<'EOF'
import json, sys
import numpy as np
x86, arm, tol, report, cpu = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3]), sys.argv[4], sys.argv[5]
problems = []
if arm["host"]["machine"] != "aarch64":
    problems.append(f"the emulated run reports machine {arm['host']['machine']!r}, expected 'aarch64'")
if [(c["path"], c["windows"]) for c in x86["clips"]] != [(c["path"], c["windows"]) for c in arm["clips"]]:
    problems.append("the two runs saw different clips or windows")
a = np.array([c["scores"] for c in x86["clips"]])
b = np.array([c["scores"] for c in arm["clips"]])
diff = float(np.abs(a - b).max())
top_a, top_b = a.argmax(1), b.argmax(1)
flipped = np.flatnonzero(top_a != top_b)
gaps = a[flipped, top_a[flipped]] - a[flipped, top_b[flipped]]  # x86's own margin between the two
real_flips = int((gaps > tol).sum())
map_diff = abs((x86["metrics"]["mAP"] or 0) - (arm["metrics"]["mAP"] or 0))
if diff > tol:
    problems.append(f"max |score difference| {diff:.3g} > tolerance {tol}")
if real_flips:
    problems.append(f"top-1 class differs on {real_flips} clip(s) whose x86 margin exceeds {tol}")
if map_diff > tol:
    problems.append(f"mAP differs by {map_diff:.3g}")
fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
lines = [
    "# arm64 check (qemu user-mode emulation)", "",
    f"Model: `{x86['model']}`; {len(a)} clips; emulated CPU: {cpu} (qemu-aarch64-static).", "",
    "| run | machine | runtime | mAP | top-1 accuracy |", "|---|---|---|---:|---:|",
    *(f"| {name} | {r['host']['machine']} | {r['host']['runtime']} | {fmt(r['metrics']['mAP'])} | {fmt(r['metrics']['accuracy'])} |"
      for name, r in (("x86", x86), ("arm64 (emulated)", arm))),
    "", f"Max |score difference| over all clips and classes: {diff:.3g} (tolerance {tol}).",
    f"Top-1 class differs on {len(flipped)} clip(s), all near ties (x86 margin <= {tol})" if len(flipped) and not real_flips
    else f"Top-1 class differs on {len(flipped)} clip(s); {real_flips} beyond near ties.",
    "Latency under emulation is not measured here and is not a device figure.", "",
    "Result: " + ("PASS" if not problems else "FAIL: " + "; ".join(problems)),
]
open(report, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(1 if problems else 0)
EOF
}

bench_smoke() {
    log "bench smoke run under emulation (marked emulated; timings are not device figures)"
    (cd "$HERE" && PYTHONPATH="$SITE" PYTHONNOUSERSITE=1 qemu-aarch64-static -L "$SYSROOT" "$ARM_PYTHON" \
        -m lean_kd_pi bench --model "$MODEL" --runs 5 --warmup-runs 1 --no-memory --emulated \
        --json "$WORK/bench_arm64_emulated.json" >/dev/null)
    "$PYTHON" -c "import json, sys; from lean_kd.bench.schema import validate_report; r = json.load(open(sys.argv[1])); validate_report(r); assert r['host']['emulated'] and r['host']['machine'] == 'aarch64'; print('[arm64-check] bench report valid, marked emulated')" "$WORK/bench_arm64_emulated.json"
    # the compiled engine (LiteRT's CompiledModel): its aarch64 library needs ARMv8.1 atomics, so
    # the runner must run it on a Cortex-A76 and refuse it, in one line, on a Cortex-A72
    local status=0
    (cd "$HERE" && PYTHONPATH="$SITE" PYTHONNOUSERSITE=1 qemu-aarch64-static -L "$SYSROOT" "$ARM_PYTHON" \
        -m lean_kd_pi bench --model "$MODEL" --runs 5 --warmup-runs 1 --no-memory --emulated \
        --engine compiled --json "$WORK/bench_arm64_compiled.json" >"$WORK/bench_compiled.log" 2>&1) || status=$?
    if grep -q " atomics " "$SYSROOT/proc/cpuinfo"; then
        [ "$status" -eq 0 ] || die "compiled engine failed on $QEMU_CPU, see $WORK/bench_compiled.log"
        log "compiled engine runs on $QEMU_CPU"
    else
        [ "$status" -eq 2 ] && grep -q "ARMv8.1 atomics" "$WORK/bench_compiled.log" \
            || die "compiled engine on $QEMU_CPU: expected a one-line refusal (exit 2), got exit $status"
        log "compiled engine refused on $QEMU_CPU (no ARMv8.1 atomics), as it should be"
    fi
}

main() {
    mkdir -p "$WORK"
    [ -x "$PYTHON" ] || die "no x86 Python at $PYTHON (run make install, or set PYTHON)"
    install_tools
    make_sysroot
    install_wheels
    make_data
    run_eval x86
    run_eval arm64
    compare
    bench_smoke
}

main "$@"
