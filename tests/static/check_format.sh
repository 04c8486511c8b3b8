#!/usr/bin/env bash
# Fails (exit 1) when a tracked .cpp or .h differs from .clang-format, naming each file;
# `git ls-files '*.cpp' '*.h' | xargs clang-format -i` fixes them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
command -v clang-format >/dev/null || { echo "clang-format is not installed (jobs/setup-debian.sh test)" >&2; exit 1; }
bad=()
while IFS= read -r file; do
  if ! clang-format --dry-run --Werror "$file" >/dev/null 2>&1; then bad+=("$file"); fi
done < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.h')
if [ ${#bad[@]} -gt 0 ]; then
  echo "not formatted as .clang-format says ($(clang-format --version)):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "fix: clang-format -i ${bad[*]}" >&2
  exit 1
fi
echo "format: $(git ls-files '*.cpp' '*.h' | wc -l) files match .clang-format ($(clang-format --version | sed 's/.*version //'))"
