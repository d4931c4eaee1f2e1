# kernels/: ops on two backends; see kernels/README.md.
