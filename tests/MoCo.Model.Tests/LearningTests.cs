using MoCo.Model.Collectives;
using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Model.Tests;

public class LearningTests
{
    [Fact]
    public void Short_run_on_synthetic_shapes_beats_the_random_encoders_knn()
    {
        // The quickstart recipe for three epochs (117 steps, about 1.5 minutes on 2 cores). Everything is seeded, so the
        // result is the same on every run of a machine; a MoCo that does not learn stays at the random encoder's
        // accuracy or falls below it (its features drift towards colour), so the margin of 2 points is the test.
        var config = new RunConfig
        {
            Arch = "resnet18", Width = 16, Stem = "cifar", MocoDim = 128, MocoK = 1024, MocoM = 0.99, MocoT = 0.1,
            BnSplits = 8, BatchSize = 128, Epochs = 3, Lr = 0.06, Cos = true, Wd = 5e-4, Augmentation = "v1",
            ImageSize = 32, Seed = 0, KnnK = 200, KnnT = 0.1,
        };
        var data = DataSource.Open("synthetic");
        using var trainer = new Pretrainer(config, "run-learn", data, SingleProcessCollective.Instance, new BatchLayout(128, 8, 1), 2);
        var random = trainer.EvaluateKnn(2);
        while (!trainer.Finished)
        {
            trainer.TrainStep();
        }
        var trained = trainer.EvaluateKnn(2);
        Assert.True(trained.Top1 > random.Top1 + 2, $"kNN top-1 {trained.Top1:F2}% after 3 epochs vs {random.Top1:F2}% for the random encoder");
    }
}
