# Sourced by the job scripts after the build (not by the tests, which run with the machine's
# own setting): chooses the OpenBLAS kernel. Debian's OpenBLAS 0.3.21 does not recognise
# recent Xeons and falls back to its generic "Prescott" kernels (sgemm about 4x slower).
# Unless the caller chose OPENBLAS_CORETYPE, the candidate kernel family is read from the
# CPU's flags and exported only if `lookbook blas-check` (a float32 product against a
# double-precision reference) passes under it. Every run summary reports the kernel that
# ran ("blas_core"). Needs $lookbook (the binary).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
  for candidate in SkylakeX Haswell; do
    case "$candidate" in
      SkylakeX) grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo || continue ;;
      Haswell) grep -qw avx2 /proc/cpuinfo || continue ;;
    esac
    if OPENBLAS_CORETYPE=$candidate "$lookbook" blas-check >/dev/null 2>&1; then
      export OPENBLAS_CORETYPE=$candidate
      break
    fi
  done
  echo "BLAS kernel: ${OPENBLAS_CORETYPE:-as detected by OpenBLAS}" >&2
fi
