from otterbench.cli import main

main()
