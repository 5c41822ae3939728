from erpops.cli import main

main()
