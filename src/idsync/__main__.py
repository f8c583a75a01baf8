from idsync.cli.app import main

main()
