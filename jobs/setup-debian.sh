#!/usr/bin/env bash
# The one list of Debian 12 packages lookbook needs. Installs whichever are missing (as root,
# or through sudo) and does nothing when all are there.
#   jobs/setup-debian.sh build   what building and running the job needs
#   jobs/setup-debian.sh test    that, plus what the tests need
#   jobs/setup-debian.sh bench   that, plus the benchmarks' peers
set -euo pipefail

# Building and running.
build_packages=(
  cmake ninja-build g++ ccache pkg-config
  libopenmpi-dev openmpi-bin           # MPI ranks (mpirun)
  libtorch-dev                         # LibTorch 1.13 (TorchScript models)
  libfaiss-dev libopenblas-dev liblapack-dev   # FAISS (static) and the BLAS/LAPACK it needs
  libopencv-dev libopencv-contrib-dev  # OpenCVConfig.cmake; img_hash lives in contrib
  libhdf5-dev                          # shard files
  libboost-program-options-dev         # command line + INI files
  libturbojpeg0-dev                    # strict JPEG decoding
  libspdlog-dev nlohmann-json3-dev libxxhash-dev zlib1g-dev
  libkainjow-mustache-dev              # the HTML report's templates (header-only Mustache)
  libicu-dev                           # Unicode classes and case mapping for CLIP's tokenizer
  libssl-dev                           # sha256 of model bundle files
  libgtest-dev                         # find_package(GTest) is part of the configure step
  dataset-fashion-mnist                # the demo catalog's garments
)
# Testing: Python readers of our outputs, clang for the libFuzzer target.
test_packages=(
  python3 python3-pandas python3-xxhash python3-h5py
  python3-faiss                        # reads our index files with faiss.read_index
  python3-torch                        # the export scripts' stand-ins (models/export_*.py)
  slurm-wlm munge                      # tests/integration/test_slurm.py starts a one-node Slurm
  chromium                             # tests/integration/test_report.py opens the report headless
  clang
  clang-format                         # tests/static/check_format.sh (Debian 12: clang-format 14)
  libjpeg-turbo-progs                  # jpegtran: lossless crops and rotations in the embed tests
)

# Benchmarks: the peers they measure against.
bench_packages=(
  libjpeg-turbo-progs                  # tjbench
  python3-torch                        # PyTorch running the same TorchScript files
  findimagedupes                       # the near-duplicate peer (tests/bench/findimagedupes_bench.py)
)

case "${1:-build}" in
  build) wanted=("${build_packages[@]}") ;;
  test) wanted=("${build_packages[@]}" "${test_packages[@]}") ;;
  bench) wanted=("${build_packages[@]}" "${test_packages[@]}" "${bench_packages[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
