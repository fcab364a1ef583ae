"""Data: reading the user's images and labelme files, manifests, splits (groups,
near-duplicates), offline augmentation, shards, and the tf.data pipeline that feeds a model."""
