from kositp.cli import main

main()
