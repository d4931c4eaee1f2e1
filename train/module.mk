# train/: see train/README.md
