// Include this instead of <catch2/catch.hpp>. Debian's LibTorch is built with glog,
// whose CHECK macro would replace Catch's: torch comes first, its CHECK is dropped, and
// Catch defines its own.
#pragma once

#include <torch/torch.h>
#ifdef CHECK
#undef CHECK
#endif
#include <catch2/catch.hpp>
