# Shorthands for the two commands of the README.
.PHONY: lab test
lab:
	./scripts/lab-demo.sh
test:
	./scripts/test.sh
