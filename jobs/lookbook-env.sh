# Sourced by the job scripts: the environment every lookbook process needs, set before it
# starts (OpenCV and OpenMP read theirs only when they load).
#
# Open MPI refuses to run as root unless told; containers and CI runners are often root.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# One thread per rank for OpenMP unless the caller chose: ranks are the parallelism.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# Idle OpenMP threads sleep instead of spinning: with --threads N, LibTorch's OpenMP pool and
# OpenBLAS's own pool take turns on the same cores (ViT-B/32, 2 threads: 1.5x;
# docs/decisions.md#2026-11-27-inference-threads-give-openblas-the-threads-let-idle-openmp-threads-sleep).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# A hostile feed's decompression bombs are stopped by the decoder's pixel limit.
export OPENCV_IO_MAX_IMAGE_PIXELS="${OPENCV_IO_MAX_IMAGE_PIXELS:-100000000}"
