"""What every board API's ``blebridge run`` needs: the runner (arguments, sys.argv, exit
status, output, board loss) and the registry of APIs with their runtimes (apis.py)."""
