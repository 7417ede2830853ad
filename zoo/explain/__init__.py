"""`zoo explain`: look inside any zoo network on your own image, every number from the real Keras graph.

    compute.py      the graph, feature maps, unit arithmetic recomputed in numpy, receptive fields
    attribution.py  saliency, SmoothGrad, Grad-CAM, occlusion, deconvnet (tf.GradientTape on the real model)
    family.py       each family's own structures (C3 table, towers, LRN, branches, |F(x)| vs |x|, dense sources)
    images.py       an image file or upload -> pixels (the weights' zoo.preprocess.Preprocessing makes the input)
    report.py       all of it for one model and image -> explain.json + PNGs
    page.py         explain.json -> one self-contained index.html
    serve.py        the same page and functions behind a local HTTP server (`zoo serve`)

TensorFlow is imported inside the functions that need it.
"""
