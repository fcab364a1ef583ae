"""Models: backbones, the classifier architectures, the detector, its losses, a model on disk
with its metadata (store), a model by name and where it came from (registry), running a model
on files (inference), exported formats, cost. The classifier and detector modules never import
each other (`make lint`)."""
