from alexnet_export.cli import main

main()
