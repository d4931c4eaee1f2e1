# data/: see data/README.md
