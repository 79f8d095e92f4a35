// NumPy .npy files, for latents and autoencoder moments (the reference dataset stores
// moments as [8, 32, 32] float32 arrays) and for test fixtures.
#pragma once

#include <string>

#include <torch/torch.h>

namespace copgen {

// Reads a .npy file (format 1.0-3.0, C order, little-endian float32, float64 or
// float16) into a contiguous float32 CPU tensor of the stored shape. Throws InputError
// naming `path` and what was wrong (missing, bad magic, unsupported dtype, Fortran
// order, truncated data).
torch::Tensor read_npy(const std::string& path);

// Writes `tensor` (moved to CPU, converted to float32, made contiguous) as a .npy
// version 1.0 file, under a temporary name first and then renamed. Throws OutputError.
void write_npy(const std::string& path, const torch::Tensor& tensor);

}  // namespace copgen
