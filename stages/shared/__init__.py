"""What the stage scripts share, in wings by concern. Each wing imports only the wings below it
(`make lint` checks it with import-linter, `.importlinter`):

    params                      one schema module per params.yaml section
    review                      summaries, figures, the review page's plots
    training | evaluation       the course of a training run | test metrics, intervals, slices
    models                      backbones, classifiers, detectors, losses, store, inference, export
    data                        images, labelme, manifests, splits, augmentation, shards, tf.data
    core                        params loader, paths, command-line plumbing, seeds

A stage script (stages/*.py) may import any wing; no wing imports a stage script.
"""
