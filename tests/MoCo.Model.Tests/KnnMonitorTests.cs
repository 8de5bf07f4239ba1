using MoCo.Model.Evaluation;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public class KnnMonitorTests
{
    [Fact]
    public void Predict_votes_with_the_k_nearest_weighted_by_exp_similarity_over_t()
    {
        // bank on the unit circle: two of class 0 near (1, 0), one of class 1 at (0, 1), one of class 1 at (-1, 0)
        float s = 1f / MathF.Sqrt(0.81f + 0.01f);
        using var bank = tensor(new float[] { 1, 0, 0.9f * s, 0.1f * s, 0, 1, -1, 0 }).view(4, 2);
        using var bankLabels = tensor(new long[] { 0, 0, 1, 1 });
        // (1, 0): both nearest are class 0. (0, 1): exp(1/0.1) for class 1 beats exp(0.11/0.1) for class 0.
        // (0.6, 0.8): nearest are (0, 1) at 0.8 and the second bank row at about 0.62, so class 1 wins; labelled 0, it is a miss.
        using var queries = tensor(new float[] { 1, 0, 0, 1, 0.6f, 0.8f }).view(3, 2);
        using var labels = tensor(new long[] { 0, 1, 0 });
        var knn = new KnnMonitor(k: 2, temperature: 0.1);

        var accuracy = knn.Predict(queries, labels, bank, bankLabels, classes: 2);

        // exact: the counts are integers, so the percentages are exact ratios
        Assert.Equal(3, accuracy.Count);
        Assert.Equal(100.0 * 2 / 3, accuracy.Top1, 12);
        Assert.Equal(100.0, accuracy.Top5, 12);
    }
}
