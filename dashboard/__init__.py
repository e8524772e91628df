"""The live page: a read-only service that folds the topics into one snapshot and pushes it to browsers."""
