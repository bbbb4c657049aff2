"""A trained model at work: the predicted class of every example, restoring a given checkpoint."""
import numpy as np
import tensorflow as tf

from runtime import checkpoints

tf1 = tf.compat.v1


def count_correct(sess, pipeline, model, images, labels):
    """How many examples of the arrays are classified right (the last, smaller batch included)."""
    return int(np.sum(predict_labels(sess, pipeline, model, images, labels) == labels))


def predict_labels(sess, pipeline, model, images, labels):
    """The predicted class of every example of the arrays: int [N], in order."""
    pipeline.initialize(sess, images, labels)
    predictions = []
    while True:
        try:
            predictions.append(sess.run(model.predictions))
        except tf.errors.OutOfRangeError:
            return np.concatenate(predictions) if predictions else np.zeros([0], np.int32)


def restore(saver, sess, checkpoint):
    """Restores one given checkpoint into the session's graph; one-line errors if damaged or foreign."""
    variables = sess.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
    checkpoints.restore_exactly(sess, saver, checkpoint, variables)
