"""The paper's experiments, built on the library: deformations of point clouds and the paired VAE study.

* ``clouds``, ``deformation``: synthetic clouds and the deformation loop (notebooks 01, 02);
* ``data``, ``models``: MNIST / FashionMNIST and the conv VAE with its evaluation classifier;
* ``training``, ``inputs``, ``runs``: paired training (the science), the input batches' persistence, and the run
  store that caches each model and splits seeds into units;
* ``metrics``, ``stats``, ``latent``: per-model measures, paired statistics over seeds, latent organization;
* ``ablation``, ``study``: notebook 02's trials, and the set-up notebooks 03-06 share;
* ``onset``, ``budgets``: when TopoVAE's gradient switches on, and weights set by a share of the VAE's loss (06);
* ``report``: how a paired comparison with the VAE is worded and tabulated (03-06);
* ``playground``: the interactive deformation of notebook 01;
* ``plots``: drawing for the notebooks.
"""
