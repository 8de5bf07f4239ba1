#!/usr/bin/env bash
# Publishes the `moco` host, self-contained for linux-x64, into one folder: the folder the Dockerfiles copy
# into their runtime images (tests/MoCo.Deploy.Tests runs this script and trains the quickstart with its output).
#
#   build/publish.sh [--variant cpu|cuda] [OUT]      OUT defaults to artifacts/publish/moco-<variant>
#
# cpu   TorchSharp with libtorch-cpu-linux-x64 (what every other build of this repository uses).
# cuda  TorchSharp-cuda-linux instead (libtorch with CUDA 12); needs nuget.org, which the CUDA Dockerfile's
#       build stage has. The NCCL library itself comes from the CUDA base image, not from here.
#
# Self-contained: the runtime image is a plain Debian 12 (there are no Debian images of .NET 10) and needs no
# .NET runtime. The build's MarkGlibcxxVersionWeak step runs after publish too: on a Debian 12 build machine (this
# one, and the Dockerfile's build stage) the published libLibTorchSharp.so has its unused GLIBCXX_3.4.32
# requirement marked weak, so it loads on Debian 12's libstdc++ (see build/MarkGlibcxxVersionWeak.cs). This
# script checks that the published copy loads on this machine's libstdc++ before it reports success.
set -euo pipefail

variant=cpu
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant="${2:?--variant needs cpu or cuda}"; shift 2 ;;
    --variant=*) variant="${1#--variant=}"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "publish.sh: unknown option $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done
case "$variant" in
  cpu|cuda) ;;
  *) echo "publish.sh: --variant must be cpu or cuda, not '$variant'" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${out:-$root/artifacts/publish/moco-$variant}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ -n "$(ls -A "$out")" ]; then
  echo "publish.sh: $out is not empty; give an empty or new folder" >&2
  exit 2
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# -r linux-x64 keeps this build's intermediate files (obj/Release/net10.0/linux-x64) apart from the plain build's.
dotnet publish "$root/src/Host/MoCo.Host.csproj" -c Release -r linux-x64 --self-contained true \
  -p:MoCoTorchBackend="$variant" -p:DebugType=none -p:GenerateDocumentationFile=false \
  -o "$out" -nologo -clp:ErrorsOnly

# What the Dockerfiles and the manifests rely on.
missing=()
for f in moco hocon/quickstart.conf hocon/kubernetes.conf libLibTorchSharp.so; do
  [ -e "$out/$f" ] || missing+=("$f")
done
if [ "$variant" = cpu ]; then
  [ -e "$out/libtorch_cpu.so" ] || missing+=(libtorch_cpu.so)
else
  [ -e "$out/libtorch_cuda.so" ] || missing+=(libtorch_cuda.so)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "publish.sh: the output in $out lacks: ${missing[*]}" >&2
  exit 1
fi

# The native libraries must resolve here: ldd names a missing library, or a version requirement the system
# libstdc++ lacks ("version ... not found"); a requirement marked weak ("weak version ... not found") loads.
if command -v ldd >/dev/null; then
  problems=$(cd "$out" && LD_LIBRARY_PATH="$out" ldd libLibTorchSharp.so 2>&1 | grep -E "not found" | grep -v "weak version" || true)
  if [ -n "$problems" ] && [ "$variant" = cpu ]; then
    echo "publish.sh: libLibTorchSharp.so does not load here:" >&2
    echo "$problems" >&2
    exit 1
  fi
fi
if [ "$variant" = cuda ]; then
  # The CUDA version the runtime image must provide (Dockerfile.cuda's CUDA_IMAGE).
  cuda_pkg=$(grep -o '"libtorch-cuda-[0-9.]*-linux-x64/[^"]*"' "$root/src/Model/obj/project.assets.json" | head -n 1 | tr -d '"' || true)
  echo "libtorch with CUDA: ${cuda_pkg:-unknown (see src/Model/obj/project.assets.json)}"
fi
echo "published moco ($variant) to $out ($(du -sh "$out" | cut -f1))"
