"""Apache Spark, the engine chosen by `engine.kind: spark`: the session, typed sources, features."""
