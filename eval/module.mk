# eval/: see eval/README.md
