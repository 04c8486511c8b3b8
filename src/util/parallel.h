// A parallel loop for I/O-bound work (stat calls, file reads): `threads` workers take indices
// from a shared counter. An exception in a worker stops the loop and is rethrown on the
// calling thread (FAISS's handleExceptions pattern).
#pragma once

#include <cstddef>
#include <functional>

namespace lookbook {

void ParallelFor(std::size_t count, int threads, const std::function<void(std::size_t)>& body);

}  // namespace lookbook
