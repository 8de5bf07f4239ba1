using MoCo.Actors.Collectives.Nccl;

namespace MoCo.Actors.Tests.Nccl;

public sealed class NativeLibraryLoadSpec
{
    [Fact]
    public void Names_that_no_loader_finds_must_all_be_tried_and_named_with_the_LD_LIBRARY_PATH_hint()
    {
        var load = NativeLibraryLoad.TryLoad(["libmoco-absent-test.so.2", "libmoco-absent-test.so"]);

        Assert.False(load.IsLoaded);
        Assert.Null(load.LoadedName);
        Assert.Equal(["libmoco-absent-test.so.2", "libmoco-absent-test.so"], load.Tried);
        Assert.Equal(["not found", "not found"], load.Failures);
        Assert.Equal(
            "libmoco absent (tried libmoco-absent-test.so.2, libmoco-absent-test.so: not found; add the directory holding one of them to LD_LIBRARY_PATH)",
            load.Describe("libmoco"));
    }

    [Fact]
    public void A_file_that_exists_but_will_not_load_must_be_reported_with_the_loaders_reason()
    {
        var directory = Directory.CreateTempSubdirectory("moco-nccl-");
        try
        {
            var broken = Path.Combine(directory.FullName, "libbroken.so");
            File.WriteAllText(broken, "not an ELF file");

            var load = NativeLibraryLoad.TryLoad([broken]);

            Assert.False(load.IsLoaded);
            var described = load.Describe("libbroken");
            Assert.Contains($"{broken}:", described);
            Assert.DoesNotContain("not found", described);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_first_name_that_loads_must_be_used_and_named()
    {
        var load = NativeLibraryLoad.TryLoad(["libmoco-absent-test.so", "libc.so.6"]);

        Assert.True(load.IsLoaded);
        Assert.Equal("libc.so.6", load.LoadedName);
        Assert.Equal(["not found"], load.Failures);
        Assert.Equal("libc found (libc.so.6)", load.Describe("libc"));
    }
}
