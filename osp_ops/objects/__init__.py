"""Object storage: the ``ObjectStore`` protocol (``base``), its implementations (``local``,
``s3``), S3 bucket administration (``buckets``) and the ``open_store`` factory.

Import from the modules themselves: this package imports nothing, so using the local
store never loads boto3.
"""
