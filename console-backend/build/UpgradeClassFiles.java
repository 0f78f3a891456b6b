import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassFileVersion;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.CodeTransform;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

/**
 * Build step of vportd.jar (run by Maven right after shading): rewrites every class file older
 * than Java 6 (version 50) as a Java 8 class file (version 52) with stack map tables, and leaves
 * everything else byte for byte.
 *
 * <p>Why: picocli ships Java 5 class files. The JVM verifies those with the old inferring
 * verifier and cannot keep them in an AOT cache or CDS archive once linked ("Old class has been
 * linked"), so every start of vportd loaded and verified all of picocli from the jar again, about
 * a tenth of a second. Rewritten, they are archived like vportd's own classes.
 *
 * <p>Only the version and the stack maps change; the code is the same instructions. Each rewritten
 * class is checked with the class-file API's verifier, and the build fails if one does not pass.
 * A class that cannot be rewritten (say, one using jsr/ret, which newer versions forbid) is left as
 * it was and named.
 *
 * <p>Usage: {@code java UpgradeClassFiles.java JAR} (the jar is replaced).
 */
public final class UpgradeClassFiles {

    static final int OLDEST_KEPT = 50;
    static final int TARGET = 52;

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: java UpgradeClassFiles.java JAR");
            System.exit(2);
        }
        Path jar = Path.of(args[0]);
        Path out = jar.resolveSibling(jar.getFileName() + ".upgrading");
        List<String> upgraded = new ArrayList<>();
        List<String> left = new ArrayList<>();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
            ClassFile classFiles = ClassFile.of(ClassFile.StackMapsOption.GENERATE_STACK_MAPS,
                    ClassFile.ClassHierarchyResolverOption.of(ClassHierarchyResolver.defaultResolver()
                            .orElse(ClassHierarchyResolver.ofResourceParsing(loader)).cached()));
            ClassTransform version = (builder, element) -> {
                if (element instanceof ClassFileVersion) {
                    builder.withVersion(TARGET, 0);
                } else {
                    builder.with(element);
                }
            };
            // Passing every method body through a code transform makes the API rebuild the code,
            // and with it the stack maps; an untouched body would be copied without them.
            ClassTransform upgrade = ClassTransform.transformingMethodBodies(CodeTransform.ACCEPT_ALL).andThen(version);
            try (InputStream fin = Files.newInputStream(jar); ZipInputStream in = new ZipInputStream(fin);
                 OutputStream fout = Files.newOutputStream(out); ZipOutputStream zout = new ZipOutputStream(fout)) {
                ZipEntry entry;
                while ((entry = in.getNextEntry()) != null) {
                    byte[] bytes = in.readAllBytes();
                    if (entry.getName().endsWith(".class") && !entry.getName().startsWith("META-INF/")) {
                        ClassModel model = classFiles.parse(bytes);
                        if (model.majorVersion() < OLDEST_KEPT) {
                            byte[] rewritten = rewrite(classFiles, model, upgrade, entry.getName(), left);
                            if (rewritten != null) {
                                bytes = rewritten;
                                upgraded.add(entry.getName());
                            }
                        }
                    }
                    ZipEntry copy = new ZipEntry(entry.getName());
                    copy.setTime(entry.getTime());
                    zout.putNextEntry(copy);
                    zout.write(bytes);
                    zout.closeEntry();
                }
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(out);
            throw e;
        }
        Files.move(out, jar, StandardCopyOption.REPLACE_EXISTING);
        System.out.println("UpgradeClassFiles: " + upgraded.size() + " class files of " + jar.getFileName()
                + " rewritten from before Java 6 to Java 8" + (left.isEmpty() ? "" : "; left as they were: " + left));
    }

    /** The class as version {@link #TARGET}, verified; null (and named in {@code left}) when it cannot be. */
    private static byte[] rewrite(ClassFile classFiles, ClassModel model, ClassTransform upgrade, String name,
                                  List<String> left) {
        byte[] rewritten;
        try {
            rewritten = classFiles.transformClass(model, upgrade);
        } catch (IllegalArgumentException | IllegalStateException e) {
            left.add(name + " (" + e.getMessage() + ")");
            return null;
        }
        List<VerifyError> errors = classFiles.verify(rewritten);
        if (!errors.isEmpty()) {
            throw new IllegalStateException(name + " does not verify after rewriting: " + errors.getFirst().getMessage());
        }
        return rewritten;
    }
}
