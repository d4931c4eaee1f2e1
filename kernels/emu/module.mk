# kernels/emu/: the CPU emulation of CUDA (see kernels/emu/README.md). Its runtime goes into
# build/libtipcap_cuda_emu.a with the kernels compiled under emulation.
EMU_SRCS += kernels/emu/emu_runtime.cpp kernels/emu/emu_exec.cpp kernels/emu/emu_cublas.cpp
