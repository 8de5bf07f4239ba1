using MoCo.Model.Nn;
using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// The optimizer step and the momentum update (every number they hand libtorch held for the call, <see cref="HeldScalar"/>)
/// on two threads while a third collects garbage without pause: no call fails, and both threads end bit for bit where one
/// thread without collections ends. With the numbers passed as TorchSharp's temporaries (<c>alpha: -lr</c>) the same
/// loop failed hundreds of calls in a few seconds (a temporary finalized while libtorch read it).
/// </summary>
public sealed class HeldScalarTests
{
    private const int Iterations = 10000;

    [Fact]
    public void The_update_computes_the_same_under_collections_on_other_threads()
    {
        using var expected = Train(collections: false)[0];
        var results = Train(collections: true);
        try
        {
            foreach (var actual in results)
            {
                Assert.True(actual.equal(expected).all().item<bool>(), "an update under collections differs from the one without");
            }
        }
        finally
        {
            results.ForEach(r => r.Dispose());
        }
    }

    /// <summary>The parameters after <see cref="Iterations"/> SGD steps and momentum updates, on one thread or on two beside a collecting thread.</summary>
    private static List<Tensor> Train(bool collections)
    {
        int threads = collections ? 2 : 1;
        var results = new Tensor[threads];
        var errors = new List<Exception>();
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect(0); // the temporaries are young: a gen-0 collection finds them
                GC.WaitForPendingFinalizers();
            }
        });
        if (collections)
        {
            collector.Start();
        }

        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            try
            {
                var spec = new EncoderSpec("resnet18", 4, Stem.Cifar, 8, false, 1);
                using var model = new MomentumContrast(() => new ResNet(spec), new MocoSettings(8, 16, 0.99, 0.1, false), 3);
                model.UseFlatParameters();
                using var sgd = new Sgd(model.EncoderQ.named_parameters().Select(p => (p.name, p.parameter)), 0.9, 5e-4);
                sgd.UseFlat(model.FlatQ!);
                for (int i = 0; i < Iterations; i++)
                {
                    model.FlatQ!.Grad!.fill_(HeldScalar.One);
                    sgd.Step(0.03 * (1 + i % 7));
                    model.MomentumUpdate();
                }
                results[t] = cat([model.FlatQ!.Data, model.FlatK!.Data]).clone();
            }
            catch (Exception e)
            {
                lock (errors)
                {
                    errors.Add(e);
                }
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        stop.Cancel();
        if (collections)
        {
            collector.Join();
        }

        Assert.True(errors.Count == 0, $"{errors.Count} thread(s) failed: {errors.FirstOrDefault()?.Message}");
        return [.. results];
    }
}
